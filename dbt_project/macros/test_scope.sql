{#- Which deliveries a staging test reads.

    Every delivery is write-once and passed the contract gate before promotion, so a staging test
    that passed on a delivery under the current code stays passed. The abaco code location keeps a
    ledger of what passed (abaco_assets/lib/test_scope.py) and, for each dbt build, sets
    ABACO_TEST_SCOPE to JSON {model: [delivery dates not yet tested]}. Tests configured with the
    placeholder where '__new_deliveries__' (dbt_project.yml: the staging tests) then read only those
    dates, so a daily run costs one day, not the whole history.

    Everything is tested when the variable is absent (a plain `dbt build`, a changed code version,
    no ledger yet) or does not name the model, and for warn-severity tests (their warning must stay
    visible on every run). Parsing never reads the variable, so it does not disturb partial parsing.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where == '__new_deliveries__' -%}
        {%- set where = abaco_new_deliveries_filter(relation) -%}
    {%- endif -%}
    {%- if where -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}


{% macro abaco_new_deliveries_filter(relation) -%}
    {%- if not execute or (config.get('severity') or 'error') | lower != 'error' -%}
        {%- do return('') -%}
    {%- endif -%}
    {%- set scope = env_var('ABACO_TEST_SCOPE', '') -%}
    {%- if not scope -%}
        {%- do return('') -%}
    {%- endif -%}
    {%- set dates = fromjson(scope).get(relation.identifier) -%}
    {%- if dates is none -%}
        {%- do return('') -%}
    {%- elif not dates -%}
        {%- do return('1 = 0') -%}
    {%- endif -%}
    {%- set literals = [] -%}
    {%- for day in dates -%}
        {%- do literals.append("cast('" ~ (day | string | replace("'", "")) ~ "' as date)") -%}
    {%- endfor -%}
    {%- do return('delivery_date in (' ~ literals | join(', ') ~ ')') -%}
{%- endmacro %}
