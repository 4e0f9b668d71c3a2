{#- What fell due in each month, per loan, from the month-end snapshot's own
    Payment Schedule: installments with due_date in the calendar month and on or
    before month_end (an installment due later in the month is not yet due on
    the tape date). One row per (month_end, loan_id) with something due. -#}
with month_end_snapshots as (
    select month_start, month_end
    from {{ ref('int_month_end_snapshots') }}
),

installments_due_in_month as (
    select
        snapshot.month_end,
        installment.loan_id,
        installment.scheduled_principal,
        installment.scheduled_interest,
        installment.scheduled_fee + installment.scheduled_other as scheduled_fees,
        installment.scheduled_total
    from {{ ref('stg_cascade__payment_schedule') }} as installment
    inner join month_end_snapshots as snapshot
        on installment.delivery_date = snapshot.month_end
    where installment.due_date between snapshot.month_start and snapshot.month_end
)

select
    month_end,
    loan_id,
    count(*) as installments_due,
    sum(scheduled_principal) as scheduled_principal_due,
    sum(scheduled_interest) as scheduled_interest_due,
    sum(scheduled_fees) as scheduled_fees_due,
    sum(scheduled_total) as scheduled_due
from installments_due_in_month
group by month_end, loan_id
