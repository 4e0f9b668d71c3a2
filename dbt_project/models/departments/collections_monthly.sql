{#- Collections' monthly scorecard: the collection rate of the KPI mart (read,
    not recomputed), the book-wide promise-to-pay outcome (the sum over stages
    of collections_by_stage, same definition of "kept"), and recoveries on
    written-off loans.

    Recoveries, precisely: Settled payments (paid_total: cash, as
    collected_total counts it) on loans whose status is Written Off in the
    month-end tape, dated after the loan's write_off_date and on or before
    month_end, read from that tape's own Historic Real Payment.
    recoveries_amount counts those dated in the calendar month;
    cumulative_recoveries all of them; cumulative_writeoff_amount is the
    write_off_amount of every loan Written Off in the tape, so
    recovery_rate = cumulative_recoveries / cumulative_writeoff_amount is the
    share of written-off principal recovered to date. One row per month_end. -#}
with book_kpis as (
    select month_end, scheduled_due, collected_total, collection_rate
    from {{ ref('kpi_portfolio_monthly') }}
),

month_end_snapshots as (
    select month_start, month_end
    from {{ ref('int_month_end_snapshots') }}
),

promise_totals as (
    select
        month_end,
        cast(sum(promises_due) as bigint) as promises_due,
        cast(sum(promises_kept) as bigint) as promises_kept
    from {{ ref('collections_by_stage') }}
    group by month_end
),

written_off_loans as (
    select month_end, loan_id, write_off_date, write_off_amount
    from {{ ref('int_loan_month_panel') }}
    where loan_status = 'Written Off'
),

write_off_stock as (
    select
        month_end,
        count(*) as written_off_loans,
        sum(write_off_amount) as cumulative_writeoff_amount
    from written_off_loans
    group by month_end
),

recovery_payments as (
    select
        loan.month_end,
        loan.loan_id,
        (payment.payment_date >= snapshot.month_start) as is_in_month,
        payment.paid_total
    from written_off_loans as loan
    inner join month_end_snapshots as snapshot
        on snapshot.month_end = loan.month_end
    inner join {{ ref('stg_cascade__historic_real_payment') }} as payment
        on payment.delivery_date = loan.month_end
        and payment.loan_id = loan.loan_id
    where payment.payment_status = 'Settled'
        and payment.payment_date > loan.write_off_date
        and payment.payment_date <= loan.month_end
),

recoveries as (
    select
        month_end,
        sum(case when is_in_month then paid_total else 0 end) as recoveries_amount,
        count(distinct case when is_in_month then loan_id end) as recovered_loans,
        sum(paid_total) as cumulative_recoveries
    from recovery_payments
    group by month_end
)

select
    book_kpis.month_end,
    book_kpis.scheduled_due,
    book_kpis.collected_total,
    book_kpis.collection_rate,
    coalesce(promise_totals.promises_due, 0) as promises_due,
    coalesce(promise_totals.promises_kept, 0) as promises_kept,
    {{ safe_divide('promise_totals.promises_kept', 'promise_totals.promises_due') }} as promise_kept_rate,
    coalesce(write_off_stock.written_off_loans, 0) as written_off_loans,
    coalesce(write_off_stock.cumulative_writeoff_amount, 0) as cumulative_writeoff_amount,
    coalesce(recoveries.recoveries_amount, 0) as recoveries_amount,
    coalesce(recoveries.recovered_loans, 0) as recovered_loans,
    coalesce(recoveries.cumulative_recoveries, 0) as cumulative_recoveries,
    {{ safe_divide('coalesce(recoveries.cumulative_recoveries, 0)', 'write_off_stock.cumulative_writeoff_amount') }} as recovery_rate
from book_kpis
left join promise_totals
    on promise_totals.month_end = book_kpis.month_end
left join write_off_stock
    on write_off_stock.month_end = book_kpis.month_end
left join recoveries
    on recoveries.month_end = book_kpis.month_end
