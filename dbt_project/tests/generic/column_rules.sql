{#- Every per-column rule of a model in ONE test: not-null columns, inclusive
    ranges (NULL passes a range: ratios are NULL when their denominator is 0) and
    accepted values (NULL passes, as in dbt's accepted_values). One test node per
    model instead of one per column and rule keeps `dbt build` fast at scale and
    small; a failing row names the column and rule that broke. -#}
{% test column_rules(model, not_null=[], ranges={}, accepted={}) %}

{%- set checks = [] -%}
{%- for column in not_null -%}
    {%- do checks.append("select '" ~ column ~ "' as column_name, 'not_null' as rule, count(*) as failures from "
                         ~ model ~ " where " ~ column ~ " is null") -%}
{%- endfor -%}
{%- for column, bounds in ranges.items() -%}
    {%- set conditions = [] -%}
    {%- if bounds[0] is not none -%}{%- do conditions.append(column ~ " < " ~ bounds[0]) -%}{%- endif -%}
    {%- if bounds[1] is not none -%}{%- do conditions.append(column ~ " > " ~ bounds[1]) -%}{%- endif -%}
    {%- do checks.append("select '" ~ column ~ "' as column_name, 'between " ~ bounds[0] ~ " and " ~ bounds[1]
                         ~ "' as rule, count(*) as failures from " ~ model ~ " where " ~ column
                         ~ " is not null and (" ~ conditions | join(" or ") ~ ")") -%}
{%- endfor -%}
{%- for column, values in accepted.items() -%}
    {%- set quoted = [] -%}
    {%- for value in values -%}{%- do quoted.append("'" ~ (value | string | replace("'", "''")) ~ "'") -%}{%- endfor -%}
    {%- do checks.append("select '" ~ column ~ "' as column_name, 'one of " ~ (values | join(', ') | replace("'", "''"))
                         ~ "' as rule, count(*) as failures from " ~ model ~ " where " ~ column
                         ~ " is not null and " ~ column ~ " not in (" ~ quoted | join(", ") ~ ")") -%}
{%- endfor -%}

select column_name, rule, failures
from (
    {{ checks | join("\n    union all\n    ") }}
) as rule_results
where failures > 0

{% endtest %}
