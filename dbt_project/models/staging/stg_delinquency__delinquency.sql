{#- The servicing system's view of every active loan on a date: one row per
    (delivery, loan). The Cascade tape stays the book of record for DPD; this
    feed adds the collections workflow (stage, promises to pay). -#}
with delinquency_snapshot as (
    select * from {{ source('delinquency', 'delinquency') }}
)

select
    cast(delivery_date as date)               as delivery_date,
    cast(as_of_date as date)                  as as_of_date,
    cast(loan_id as {{ dbt.type_string() }})  as loan_id,
    cast(days_past_due as bigint)             as days_past_due,
    cast(overdue_principal as decimal(18, 6)) as overdue_principal,
    cast(overdue_interest as decimal(18, 6))  as overdue_interest,
    cast(first_unpaid_due_date as date)       as first_unpaid_due_date,
    cast(collection_stage as {{ dbt.type_string() }}) as collection_stage,
    cast(promise_to_pay_date as date)         as promise_to_pay_date
from delinquency_snapshot
