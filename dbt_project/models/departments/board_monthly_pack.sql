{#- The board's headline figures of each month-end, one row per month_end, all
    read from the KPI and department marts (the covenant results are Python
    metrics in schema metrics and join in the board pack report).
    opb_growth_mom compares with the month-end snapshot of the calendar month
    before; NULL when that month has no tape, as for roll rates. -#}
with book_kpis as (
    select *
    from {{ ref('kpi_portfolio_monthly') }}
),

month_end_snapshots as (
    select month_end, previous_month_end
    from {{ ref('int_month_end_snapshots') }}
),

finance as (
    select month_end, net_credit_loss
    from {{ ref('finance_monthly_pnl') }}
),

collections as (
    select month_end, promise_kept_rate
    from {{ ref('collections_monthly') }}
)

select
    book_kpis.month_end,
    book_kpis.opb,
    {{ safe_divide('book_kpis.opb - previous_book.opb', 'previous_book.opb') }} as opb_growth_mom,
    book_kpis.disbursed_amount,
    book_kpis.disbursed_loans,
    book_kpis.active_customers,
    book_kpis.par30,
    book_kpis.npl_ratio,
    book_kpis.npl180_ratio,
    book_kpis.collection_rate,
    collections.promise_kept_rate,
    book_kpis.revenue,
    book_kpis.yield_12m,
    book_kpis.weighted_apr,
    book_kpis.writeoff_amount,
    finance.net_credit_loss,
    book_kpis.top10_concentration,
    book_kpis.hhi
from book_kpis
inner join month_end_snapshots as snapshot
    on snapshot.month_end = book_kpis.month_end
left join book_kpis as previous_book
    on previous_book.month_end = snapshot.previous_month_end
left join finance
    on finance.month_end = book_kpis.month_end
left join collections
    on collections.month_end = book_kpis.month_end
