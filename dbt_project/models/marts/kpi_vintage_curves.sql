{#- Cumulative default and write-off curves per disbursement vintage (kpis.md):
    one row per (vintage_month, month_end) for every month-end snapshot in or
    after the vintage month. A defaulted loan counts with its exposure at its
    first default snapshot (int_loan_first_defaults), so the curve never moves
    back when the loan later amortises or is written off. -#}
with month_end_snapshots as (
    select month_start, month_end, month_seq
    from {{ ref('int_month_end_snapshots') }}
),

loan_panel as (
    select month_end, vintage_month, loan_id, disbursement_amount, write_off_date, write_off_amount
    from {{ ref('int_loan_month_panel') }}
),

vintages as (
    select distinct
        vintage_month,
        {{ month_seq('vintage_month') }} as vintage_month_seq
    from loan_panel
),

vintage_snapshots as (
    select
        vintage.vintage_month,
        snapshot.month_end,
        snapshot.month_seq - vintage.vintage_month_seq as months_on_book
    from vintages as vintage
    inner join month_end_snapshots as snapshot
        on snapshot.month_start >= vintage.vintage_month
),

-- what the snapshot's own tape says about the vintage's loans
vintage_book as (
    select
        vintage_month,
        month_end,
        sum(disbursement_amount) as disbursed,
        sum(case when write_off_date <= month_end then write_off_amount else 0 end) as cum_writeoff_amount
    from loan_panel
    group by vintage_month, month_end
),

vintage_defaults as (
    select
        vintage_snapshot.vintage_month,
        vintage_snapshot.month_end,
        sum(first_default.default_exposure) as cum_default_principal
    from vintage_snapshots as vintage_snapshot
    inner join {{ ref('int_loan_first_defaults') }} as first_default
        on first_default.vintage_month = vintage_snapshot.vintage_month
        and first_default.first_default_month_end <= vintage_snapshot.month_end
    group by vintage_snapshot.vintage_month, vintage_snapshot.month_end
)

select
    vintage_snapshot.vintage_month,
    vintage_snapshot.month_end,
    vintage_snapshot.months_on_book,
    coalesce(book.disbursed, 0) as disbursed,
    coalesce(vintage_default.cum_default_principal, 0) as cum_default_principal,
    {{ safe_divide('coalesce(vintage_default.cum_default_principal, 0)', 'book.disbursed') }} as cum_default_rate,
    coalesce(book.cum_writeoff_amount, 0) as cum_writeoff_amount,
    {{ safe_divide('coalesce(book.cum_writeoff_amount, 0)', 'book.disbursed') }} as cum_writeoff_rate
from vintage_snapshots as vintage_snapshot
left join vintage_book as book
    on book.vintage_month = vintage_snapshot.vintage_month
    and book.month_end = vintage_snapshot.month_end
left join vintage_defaults as vintage_default
    on vintage_default.vintage_month = vintage_snapshot.vintage_month
    and vintage_default.month_end = vintage_snapshot.month_end
