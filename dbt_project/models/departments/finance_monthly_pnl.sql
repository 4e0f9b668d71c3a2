{#- Finance's P&L-style month: the revenue, collections, write-offs, yield,
    weighted APR and rotation of kpi_portfolio_monthly (read, not recomputed),
    with recoveries on written-off loans from collections_monthly, so that
    net_credit_loss = writeoff_amount - recoveries_amount and
    risk_adjusted_revenue = revenue - net_credit_loss. A cash-basis view of
    the loan book (no accruals, no funding cost, no opex): it explains the
    lending margin, it is not the ledger. One row per month_end. -#}
with book_kpis as (
    select
        month_end,
        opb,
        disbursed_amount,
        collected_principal,
        collected_interest,
        collected_fees,
        revenue,
        writeoff_amount,
        weighted_apr,
        yield_12m,
        rotation_12m
    from {{ ref('kpi_portfolio_monthly') }}
),

recoveries as (
    select month_end, recoveries_amount
    from {{ ref('collections_monthly') }}
)

select
    book_kpis.month_end,
    book_kpis.opb,
    book_kpis.disbursed_amount,
    book_kpis.collected_principal,
    book_kpis.collected_interest,
    book_kpis.collected_fees,
    book_kpis.revenue,
    book_kpis.writeoff_amount,
    coalesce(recoveries.recoveries_amount, 0) as recoveries_amount,
    book_kpis.writeoff_amount - coalesce(recoveries.recoveries_amount, 0) as net_credit_loss,
    book_kpis.revenue - (book_kpis.writeoff_amount - coalesce(recoveries.recoveries_amount, 0)) as risk_adjusted_revenue,
    book_kpis.weighted_apr,
    book_kpis.yield_12m,
    book_kpis.rotation_12m
from book_kpis
left join recoveries
    on recoveries.month_end = book_kpis.month_end
