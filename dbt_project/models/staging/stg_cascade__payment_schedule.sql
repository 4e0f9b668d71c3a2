{#- Contractual installments as known to each Cascade delivery: one row per
    (delivery, loan, installment). Each tape carries the whole schedule, so
    schedule flows are read from one tape, never from a union of tapes. -#}
with installments as (
    select * from {{ source('cascade', 'payment_schedule') }}
)

select
    cast(delivery_date as date)               as delivery_date,
    cast(loan_id as {{ dbt.type_string() }})  as loan_id,
    cast(installment_number as bigint)        as installment_number,
    cast(due_date as date)                    as due_date,
    cast(scheduled_principal as decimal(18, 6)) as scheduled_principal,
    cast(scheduled_interest as decimal(18, 6))  as scheduled_interest,
    cast(scheduled_fee as decimal(18, 6))       as scheduled_fee,
    cast(scheduled_other as decimal(18, 6))     as scheduled_other,
    cast(scheduled_total as decimal(18, 6))     as scheduled_total
from installments
