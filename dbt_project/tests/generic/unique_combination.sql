{#- The grain of most models here is a combination of columns (a loan appears once
    per tape, so uniqueness is on (delivery_date, loan_id), not loan_id). Fails with
    every key that occurs more than once. -#}
{% test unique_combination(model, combination_of_columns) %}

select
    {{ combination_of_columns | join(', ') }},
    count(*) as rows_with_key
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1

{% endtest %}
