{#- kpis.md: ratios are fractions and NULL, not 0, when the denominator is 0.
    Both sides go to double precision first: decimal division types differ by
    warehouse (DuckDB returns DOUBLE, BigQuery NUMERIC), doubles are the same
    everywhere and are exact well beyond the 1e-9 the KPI tests ask for. -#}
{% macro safe_divide(numerator, denominator) -%}
    (cast({{ numerator }} as {{ abaco.float_type() }}) / nullif(cast({{ denominator }} as {{ abaco.float_type() }}), 0))
{%- endmacro %}

{% macro float_type() -%}
    {{ return(adapter.dispatch('float_type', 'abaco')()) }}
{%- endmacro %}

{#- dbt's own type_float() is FLOAT, which is 4-byte REAL on DuckDB: not precise enough. -#}
{% macro default__float_type() -%}
    double precision
{%- endmacro %}

{% macro bigquery__float_type() -%}
    float64
{%- endmacro %}
