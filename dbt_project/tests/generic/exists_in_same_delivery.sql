{#- Referential integrity inside one delivery: dbt's `relationships` test cannot
    add the partition to the join, and a key that exists only in another tape is
    still a broken reference. Fails with each (delivery, key) missing from `to`. -#}
{% test exists_in_same_delivery(model, column_name, to, field, delivery_column='delivery_date') %}

with child as (
    select * from {{ model }}
)

select
    child.{{ delivery_column }},
    child.{{ column_name }}
from child
left join {{ to }} as parent
    on parent.{{ delivery_column }} = child.{{ delivery_column }}
    and parent.{{ field }} = child.{{ column_name }}
where child.{{ column_name }} is not null
    and parent.{{ field }} is null

{% endtest %}
