{#- Risk's PAR ladder per borrower segment, read from kpi_portfolio_monthly_by_segment
    (never recomputed from loans), with each segment's share of the book's OPB so a
    deteriorating but small segment is read at its true weight. One row per
    (month_end, segment). -#}
with segment_kpis as (
    select
        month_end,
        segment,
        opb,
        active_loans,
        par1,
        par7,
        par15,
        par30,
        par60,
        par90,
        npl180_ratio
    from {{ ref('kpi_portfolio_monthly_by_segment') }}
),

book_kpis as (
    select month_end, opb as book_opb
    from {{ ref('kpi_portfolio_monthly') }}
)

select
    segment_kpis.month_end,
    segment_kpis.segment,
    segment_kpis.opb,
    {{ safe_divide('segment_kpis.opb', 'book_kpis.book_opb') }} as opb_share_of_book,
    segment_kpis.active_loans,
    segment_kpis.par1,
    segment_kpis.par7,
    segment_kpis.par15,
    segment_kpis.par30,
    segment_kpis.par60,
    segment_kpis.par90,
    segment_kpis.npl180_ratio
from segment_kpis
inner join book_kpis
    on book_kpis.month_end = segment_kpis.month_end
