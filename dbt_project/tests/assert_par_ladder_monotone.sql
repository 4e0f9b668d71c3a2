{#- Every loan at DPD >= 7 is also at DPD >= 1, and so on: in each row of the
    portfolio marts par1 >= par7 >= par15 >= par30 >= par60 >= par90 >=
    npl180_ratio, and npl_ratio is par90. Checked on the total and on both
    cuts; NULL rows (OPB 0) are NULL all along the ladder and pass. -#}
{#- Reads several marts: tell Dagster which asset this check belongs to. -#}
{{ config(meta={'dagster': {'ref': {'name': 'kpi_portfolio_monthly'}}}) }}
{%- set portfolio_marts = {
    'kpi_portfolio_monthly': none,
    'kpi_portfolio_monthly_by_segment': 'segment',
    'kpi_portfolio_monthly_by_product': 'product_type',
} %}
{%- set ladder = ['par1', 'par7', 'par15', 'par30', 'par60', 'par90', 'npl180_ratio'] %}

{% for mart, cut_column in portfolio_marts.items() %}
select
    '{{ mart }}' as mart,
    month_end,
    {{ ('cast(' ~ cut_column ~ ' as ' ~ dbt.type_string() ~ ')') if cut_column else 'cast(null as ' ~ dbt.type_string() ~ ')' }} as cut_value,
    {{ ladder | join(', ') }},
    npl_ratio
from {{ ref(mart) }}
where
    {%- for higher, lower in zip(ladder[:-1], ladder[1:]) %}
    {{ higher }} < {{ lower }} - 1e-12 or
    {%- endfor %}
    ((npl_ratio is null) <> (par90 is null)) or abs(npl_ratio - par90) > 1e-12
{% if not loop.last %}union all{% endif %}
{% endfor %}
