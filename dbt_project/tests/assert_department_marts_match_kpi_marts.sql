{#- The department marts read the KPI marts rather than recompute them, so every
    figure they share must be equal, month by month (and segment by segment):
    * the columns they copy (finance_monthly_pnl, board_monthly_pack,
      collections_monthly, risk_concentration, risk_par_ladder_by_segment)
      equal the KPI mart's column of the same name;
    * the figures they rebuild from the panel add back up to the KPI marts:
      collections_by_stage's stages sum to opb, active_loans and the par30
      balance; risk_top_obligors' last cumulative share is top10_concentration;
      risk_par_ladder_by_segment's shares of the book sum to 1.
    A month missing on either side fails too; balances rebuilt from loans must
    match to the half cent. Fails with one row per mismatch. -#}
{{ config(meta={'dagster': {'ref': {'name': 'finance_monthly_pnl'}}}) }}
{%- set copied_columns = {
    'finance_monthly_pnl': ('kpi_portfolio_monthly', ['month_end'],
        ['opb', 'disbursed_amount', 'collected_principal', 'collected_interest', 'collected_fees', 'revenue',
         'writeoff_amount', 'weighted_apr', 'yield_12m', 'rotation_12m']),
    'board_monthly_pack': ('kpi_portfolio_monthly', ['month_end'],
        ['opb', 'disbursed_amount', 'disbursed_loans', 'active_customers', 'par30', 'npl_ratio', 'npl180_ratio',
         'collection_rate', 'revenue', 'yield_12m', 'weighted_apr', 'writeoff_amount', 'top10_concentration',
         'hhi']),
    'collections_monthly': ('kpi_portfolio_monthly', ['month_end'],
        ['scheduled_due', 'collected_total', 'collection_rate']),
    'risk_concentration': ('kpi_portfolio_monthly', ['month_end'],
        ['opb', 'active_customers', 'top10_concentration', 'hhi']),
    'risk_par_ladder_by_segment': ('kpi_portfolio_monthly_by_segment', ['month_end', 'segment'],
        ['opb', 'active_loans', 'par1', 'par7', 'par15', 'par30', 'par60', 'par90', 'npl180_ratio']),
} %}

with
{% for department_mart, (kpi_mart, keys, columns) in copied_columns.items() %}
{{ department_mart }}_mismatches as (
    {%- for column in columns %}
    select
        '{{ department_mart }}.{{ column }}' as shared_figure,
        coalesce(department.month_end, kpi.month_end) as month_end,
        cast(department.{{ column }} as {{ abaco.float_type() }}) as department_value,
        cast(kpi.{{ column }} as {{ abaco.float_type() }}) as kpi_value
    from {{ ref(department_mart) }} as department
    full outer join {{ ref(kpi_mart) }} as kpi
        on {% for key in keys %}kpi.{{ key }} = department.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
    where department.month_end is null
        or kpi.month_end is null
        or {{ abaco.values_differ('department.' ~ column, 'kpi.' ~ column) }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),
{% endfor %}

stage_totals as (
    select
        month_end,
        sum(opb) as opb,
        sum(active_loans) as active_loans,
        sum(dpd_30_59_balance + dpd_60_89_balance + dpd_90_179_balance + dpd_180_plus_balance) as dpd30_balance
    from {{ ref('collections_by_stage') }}
    group by month_end
),

stage_mismatches as (
    select
        'collections_by_stage sums' as shared_figure,
        kpi.month_end,
        cast(stage_totals.opb as {{ abaco.float_type() }}) as department_value,
        cast(kpi.opb as {{ abaco.float_type() }}) as kpi_value
    from {{ ref('kpi_portfolio_monthly') }} as kpi
    left join stage_totals
        on stage_totals.month_end = kpi.month_end
    where abs(coalesce(stage_totals.opb, 0) - kpi.opb) >= 0.005
        or coalesce(stage_totals.active_loans, 0) <> kpi.active_loans
        or {{ abaco.values_differ(abaco.safe_divide('stage_totals.dpd30_balance', 'kpi.opb'), 'kpi.par30') }}
),

top_obligor_shares as (
    select month_end, max(cumulative_opb_share) as top_cumulative_share
    from {{ ref('risk_top_obligors') }}
    group by month_end
),

top_obligor_mismatches as (
    select
        'risk_top_obligors.cumulative_opb_share' as shared_figure,
        kpi.month_end,
        top_obligor_shares.top_cumulative_share as department_value,
        kpi.top10_concentration as kpi_value
    from {{ ref('kpi_portfolio_monthly') }} as kpi
    left join top_obligor_shares
        on top_obligor_shares.month_end = kpi.month_end
    where {{ abaco.values_differ('top_obligor_shares.top_cumulative_share', 'kpi.top10_concentration') }}
),

segment_share_mismatches as (
    select
        'risk_par_ladder_by_segment.opb_share_of_book' as shared_figure,
        month_end,
        sum(opb_share_of_book) as department_value,
        cast(1 as {{ abaco.float_type() }}) as kpi_value
    from {{ ref('risk_par_ladder_by_segment') }}
    where opb_share_of_book is not null
    group by month_end
    having abs(sum(opb_share_of_book) - 1) > 1e-9
)

{% for department_mart in copied_columns %}
select * from {{ department_mart }}_mismatches
union all
{% endfor %}
select * from stage_mismatches
union all
select * from top_obligor_mismatches
union all
select * from segment_share_mismatches
