{#- Settled payment flows per loan attributed to each month-end snapshot, read
    from that snapshot's own Historic Real Payment (full history, and the latest
    word on each payment's status: a payment Settled in an earlier tape and
    Reversed in this one does not count). One row per (month_end, loan_id) for
    loans with a Settled payment in the 12 months ending at month_end; the
    in-month columns cover payment dates in the calendar month, the *_12m
    columns the calendar months M-11 .. M, both up to month_end. -#}
with month_end_snapshots as (
    select month_end, month_seq
    from {{ ref('int_month_end_snapshots') }}
),

settled_payments_in_window as (
    select
        snapshot.month_end,
        payment.loan_id,
        ({{ month_seq('payment.payment_date') }} = snapshot.month_seq) as is_in_month,
        payment.paid_principal,
        payment.paid_interest,
        payment.paid_fee + payment.paid_other as paid_fees,
        payment.paid_tax + payment.paid_fee_tax as paid_taxes,
        payment.rebates,
        payment.paid_total,
        payment.paid_interest + payment.paid_fee + payment.paid_other - payment.rebates as revenue
    from {{ ref('stg_cascade__historic_real_payment') }} as payment
    inner join month_end_snapshots as snapshot
        on payment.delivery_date = snapshot.month_end
    where payment.payment_status = 'Settled'
        and payment.payment_date <= snapshot.month_end
        and {{ month_seq('payment.payment_date') }} between snapshot.month_seq - 11 and snapshot.month_seq
)

select
    month_end,
    loan_id,
    sum(case when is_in_month then paid_principal else 0 end) as collected_principal,
    sum(case when is_in_month then paid_interest else 0 end) as collected_interest,
    sum(case when is_in_month then paid_fees else 0 end) as collected_fees,
    sum(case when is_in_month then paid_taxes else 0 end) as collected_taxes,
    sum(case when is_in_month then rebates else 0 end) as rebates,
    sum(case when is_in_month then paid_total else 0 end) as collected_total,
    sum(case when is_in_month then revenue else 0 end) as revenue,
    sum(paid_principal) as collected_principal_12m,
    sum(revenue) as revenue_12m
from settled_payments_in_window
group by month_end, loan_id
