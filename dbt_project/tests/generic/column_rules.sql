{#- Every per-column rule of a model in ONE test and ONE scan: not-null columns,
    inclusive ranges (NULL passes a range: ratios are NULL when their denominator
    is 0) and accepted values (NULL passes, as in dbt's accepted_values). One
    aggregate counts the failing rows of every rule, so the model is read once
    however many rules it has (a staging view reads its Parquet files once), and
    one test node per model instead of one per column and rule keeps `dbt build`
    fast and small. A failing row names the column, the rule and the number of
    offending rows. Plain SQL (sum/case, union all): DuckDB, BigQuery, Snowflake. -#}
{% test column_rules(model, not_null=[], ranges={}, accepted={}) %}

{%- set rules = [] -%}
{%- for column in not_null -%}
    {%- do rules.append((column, "not_null", column ~ " is null")) -%}
{%- endfor -%}
{%- for column, bounds in ranges.items() -%}
    {%- set conditions = [] -%}
    {%- if bounds[0] is not none -%}{%- do conditions.append(column ~ " < " ~ bounds[0]) -%}{%- endif -%}
    {%- if bounds[1] is not none -%}{%- do conditions.append(column ~ " > " ~ bounds[1]) -%}{%- endif -%}
    {%- do rules.append((column, "between " ~ bounds[0] ~ " and " ~ bounds[1],
                         column ~ " is not null and (" ~ conditions | join(" or ") ~ ")")) -%}
{%- endfor -%}
{%- for column, values in accepted.items() -%}
    {%- set quoted = [] -%}
    {%- for value in values -%}{%- do quoted.append("'" ~ (value | string | replace("'", "''")) ~ "'") -%}{%- endfor -%}
    {%- do rules.append((column, "one of " ~ values | join(", "),
                         column ~ " is not null and " ~ column ~ " not in (" ~ quoted | join(", ") ~ ")")) -%}
{%- endfor -%}

select column_name, rule, failures
from (
    select
        rule_list.column_name,
        rule_list.rule,
        case rule_list.rule_index
        {%- for column, rule, failing in rules %}
            when {{ loop.index0 }} then counts.failures_{{ loop.index0 }}
        {%- endfor %}
        end as failures
    from (
        select
        {%- for column, rule, failing in rules %}
            sum(case when {{ failing }} then 1 else 0 end) as failures_{{ loop.index0 }}{{ "," if not loop.last }}
        {%- endfor %}
        from {{ model }}
    ) as counts
    cross join (
        {%- for column, rule, failing in rules %}
        select {{ loop.index0 }} as rule_index, '{{ column }}' as column_name,
            '{{ rule | replace("'", "''") }}' as rule{{ " union all" if not loop.last }}
        {%- endfor %}
    ) as rule_list
) as rule_results
where failures > 0

{% endtest %}
