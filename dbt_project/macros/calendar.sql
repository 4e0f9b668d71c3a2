{#- Calendar arithmetic for month-based KPIs, kept in one place so a new warehouse
    only needs these two expressions right. -#}

{#- First day of the calendar month of a DATE, as a DATE (DuckDB's date_trunc
    returns a TIMESTAMP, BigQuery's argument order differs; dbt's cross-database
    date_trunc handles both and the cast brings it back to a DATE). -#}
{% macro month_start(date_expression) -%}
    cast({{ dbt.date_trunc('month', date_expression) }} as date)
{%- endmacro %}

{#- A month as one integer (year * 12 + month), so "the month before" is seq - 1 and
    "the 12 months ending at M" is seq - 11 .. seq with plain integer comparisons. -#}
{% macro month_seq(date_expression) -%}
    (extract(year from {{ date_expression }}) * 12 + extract(month from {{ date_expression }}))
{%- endmacro %}
