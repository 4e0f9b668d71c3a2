{#- Collections' view of the book per collection_stage: the active loans of the
    month-end tape (the book of record: balance and DPD bucket come from the
    panel) joined to the servicing system's delinquency snapshot of that month
    (stage, overdue amounts), plus the promises to pay that fell due in the
    month and how many were kept. One row per (month_end, collection_stage).

    Delinquency snapshot of a month: the latest delinquency delivery dated in
    the calendar month, on or before month_end (normally month_end itself).
    An active loan missing from it gets the stage `not_in_feed`.

    Promise to pay, precisely:
    * a promise is a distinct (loan_id, promise_to_pay_date) seen in the
      delinquency feed; it is *recorded on* the first delivery date that shows
      it, and belongs to the collection_stage of the loan on that delivery;
    * it *falls due* in month M when promise_to_pay_date is in the calendar
      month of M's month_end and on or before month_end;
    * it is *kept* when the month-end tape's Historic Real Payment holds at
      least one Settled payment on that loan with paid_total > 0 and
      payment_date from the recorded-on date to promise_to_pay_date, both
      inclusive (no grace days; Reversed payments never keep a promise);
      otherwise it is broken;
    * promise_kept_rate = promises kept / promises due (NULL when none fell due).
    A broken promise that the borrower renews under a new date is a new
    promise. -#}
{%- set dpd_bucket_columns = {
    'current': 'current_balance',
    '1-29': 'dpd_1_29_balance',
    '30-59': 'dpd_30_59_balance',
    '60-89': 'dpd_60_89_balance',
    '90-179': 'dpd_90_179_balance',
    '180+': 'dpd_180_plus_balance',
} %}

with month_end_snapshots as (
    select month_start, month_end
    from {{ ref('int_month_end_snapshots') }}
),

active_loans as (
    select month_end, loan_id, dpd_bucket, outstanding_principal
    from {{ ref('int_loan_month_panel') }}
    where is_active
),

delinquency as (
    select
        delivery_date,
        loan_id,
        collection_stage,
        overdue_principal,
        overdue_interest,
        promise_to_pay_date
    from {{ ref('stg_delinquency__delinquency') }}
),

delinquency_snapshot_dates as (
    select
        snapshot.month_end,
        max(delivery.delivery_date) as delinquency_date
    from month_end_snapshots as snapshot
    inner join (select distinct delivery_date from delinquency) as delivery
        on delivery.delivery_date between snapshot.month_start and snapshot.month_end
    group by snapshot.month_end
),

loans_by_stage as (
    select
        loan.month_end,
        coalesce(servicing.collection_stage, 'not_in_feed') as collection_stage,
        loan.dpd_bucket,
        loan.outstanding_principal,
        servicing.overdue_principal,
        servicing.overdue_interest
    from active_loans as loan
    left join delinquency_snapshot_dates as snapshot_date
        on snapshot_date.month_end = loan.month_end
    left join delinquency as servicing
        on servicing.delivery_date = snapshot_date.delinquency_date
        and servicing.loan_id = loan.loan_id
),

stage_positions as (
    select
        month_end,
        collection_stage,
        count(*) as active_loans,
        sum(outstanding_principal) as opb,
        {%- for bucket, column in dpd_bucket_columns.items() %}
        sum(case when dpd_bucket = '{{ bucket }}' then outstanding_principal else 0 end) as {{ column }},
        {%- endfor %}
        coalesce(sum(overdue_principal), 0) as overdue_principal,
        coalesce(sum(overdue_interest), 0) as overdue_interest
    from loans_by_stage
    group by month_end, collection_stage
),

promises as (
    select
        loan_id,
        promise_to_pay_date,
        min(delivery_date) as recorded_on
    from delinquency
    where promise_to_pay_date is not null
    group by loan_id, promise_to_pay_date
),

promises_due as (
    select
        snapshot.month_end,
        promise.loan_id,
        promise.promise_to_pay_date,
        promise.recorded_on,
        recorded.collection_stage
    from promises as promise
    inner join delinquency as recorded
        on recorded.delivery_date = promise.recorded_on
        and recorded.loan_id = promise.loan_id
    inner join month_end_snapshots as snapshot
        on promise.promise_to_pay_date between snapshot.month_start and snapshot.month_end
),

kept_promises as (
    select distinct
        promise.month_end,
        promise.loan_id,
        promise.promise_to_pay_date
    from promises_due as promise
    inner join {{ ref('stg_cascade__historic_real_payment') }} as payment
        on payment.delivery_date = promise.month_end
        and payment.loan_id = promise.loan_id
        and payment.payment_date between promise.recorded_on and promise.promise_to_pay_date
    where payment.payment_status = 'Settled'
        and payment.paid_total > 0
),

promise_outcomes as (
    select
        promise.month_end,
        promise.collection_stage,
        count(*) as promises_due,
        count(kept.loan_id) as promises_kept
    from promises_due as promise
    left join kept_promises as kept
        on kept.month_end = promise.month_end
        and kept.loan_id = promise.loan_id
        and kept.promise_to_pay_date = promise.promise_to_pay_date
    group by promise.month_end, promise.collection_stage
),

stage_keys as (
    select distinct month_end, collection_stage
    from (
        select month_end, collection_stage from stage_positions
        union all
        select month_end, collection_stage from promise_outcomes
    ) as keyed_rows
)

select
    stage_key.month_end,
    stage_key.collection_stage,
    coalesce(stage_position.active_loans, 0) as active_loans,
    coalesce(stage_position.opb, 0) as opb,
    {%- for column in dpd_bucket_columns.values() %}
    coalesce(stage_position.{{ column }}, 0) as {{ column }},
    {%- endfor %}
    coalesce(stage_position.overdue_principal, 0) as overdue_principal,
    coalesce(stage_position.overdue_interest, 0) as overdue_interest,
    coalesce(outcome.promises_due, 0) as promises_due,
    coalesce(outcome.promises_kept, 0) as promises_kept,
    {{ safe_divide('outcome.promises_kept', 'outcome.promises_due') }} as promise_kept_rate
from stage_keys as stage_key
left join stage_positions as stage_position
    on stage_position.month_end = stage_key.month_end
    and stage_position.collection_stage = stage_key.collection_stage
left join promise_outcomes as outcome
    on outcome.month_end = stage_key.month_end
    and outcome.collection_stage = stage_key.collection_stage
