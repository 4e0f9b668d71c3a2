{#- The ten largest obligors of each month-end snapshot, ranked exactly as the
    top10_concentration KPI ranks them (customer OPB descending, customer_id to
    break ties), so the cumulative share at the last rank equals
    kpi_portfolio_monthly.top10_concentration (a singular test holds it).
    One row per (month_end, opb_rank), ranks 1..10 (fewer when the book has
    fewer customers). -#}
{%- set top_obligor_count = 10 %}

with customer_balances as (
    select
        month_end,
        customer_id,
        max(segment) as segment,
        sum(outstanding_principal) as obligor_opb
    from {{ ref('int_loan_month_panel') }}
    where is_active
    group by month_end, customer_id
),

ranked_obligors as (
    select
        customer_balances.*,
        row_number() over (
            partition by month_end
            order by obligor_opb desc, customer_id
        ) as opb_rank
    from customer_balances
),

book_kpis as (
    select month_end, opb as book_opb
    from {{ ref('kpi_portfolio_monthly') }}
)

select
    ranked_obligors.month_end,
    ranked_obligors.opb_rank,
    ranked_obligors.customer_id,
    ranked_obligors.segment,
    ranked_obligors.obligor_opb,
    {{ safe_divide('ranked_obligors.obligor_opb', 'book_kpis.book_opb') }} as obligor_opb_share,
    {{ safe_divide(
        'sum(ranked_obligors.obligor_opb) over (partition by ranked_obligors.month_end order by ranked_obligors.opb_rank rows between unbounded preceding and current row)',
        'book_kpis.book_opb') }} as cumulative_opb_share
from ranked_obligors
inner join book_kpis
    on book_kpis.month_end = ranked_obligors.month_end
where ranked_obligors.opb_rank <= {{ top_obligor_count }}
