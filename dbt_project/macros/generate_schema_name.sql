{#- Use the configured schema name verbatim (marts, staging, intermediate),
    not dbt's default "<target_schema>_<custom>" concatenation: kpis.md and
    every consumer address the marts as schema `marts`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
