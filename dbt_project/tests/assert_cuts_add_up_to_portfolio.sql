{#- The segment and product cuts partition the book, so their sums of opb,
    disbursed_amount, collected_total and writeoff_amount equal the portfolio
    total of the month, to the cent. A cut missing a month, or a month missing
    from the total, fails too. (Distinct-customer counts and ratios are not
    additive and are not checked here.) -#}
{#- Reads several marts: tell Dagster which asset this check belongs to. -#}
{{ config(meta={'dagster': {'ref': {'name': 'kpi_portfolio_monthly'}}}) }}
{%- set additive_columns = ['opb', 'disbursed_amount', 'collected_total', 'writeoff_amount'] %}
{%- set cut_marts = ['kpi_portfolio_monthly_by_segment', 'kpi_portfolio_monthly_by_product'] %}

with portfolio_totals as (
    select month_end, {{ additive_columns | join(', ') }}
    from {{ ref('kpi_portfolio_monthly') }}
),

{% for mart in cut_marts %}
{{ mart }}_sums as (
    select
        month_end,
        {%- for column in additive_columns %}
        sum({{ column }}) as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ ref(mart) }}
    group by month_end
),
{% endfor %}

mismatches as (
{% for mart in cut_marts %}
    select
        '{{ mart }}' as cut_mart,
        coalesce(total.month_end, cut.month_end) as month_end,
        {%- for column in additive_columns %}
        total.{{ column }} as total_{{ column }},
        cut.{{ column }} as cut_{{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from portfolio_totals as total
    full outer join {{ mart }}_sums as cut
        on cut.month_end = total.month_end
    where total.month_end is null
        or cut.month_end is null
        {%- for column in additive_columns %}
        or abs(total.{{ column }} - cut.{{ column }}) >= 0.005
        {%- endfor %}
    {% if not loop.last %}union all{% endif %}
{% endfor %}
)

select * from mismatches
