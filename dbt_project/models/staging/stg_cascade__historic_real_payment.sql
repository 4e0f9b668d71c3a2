{#- Payments received, full history as of each Cascade delivery: one row per
    (delivery, payment). A later tape can restate a payment (e.g. Settled ->
    Reversed), which is why flows are read from one tape at a time. -#}
with payments as (
    select * from {{ source('cascade', 'historic_real_payment') }}
)

select
    cast(delivery_date as date)                 as delivery_date,
    cast(payment_id as {{ dbt.type_string() }}) as payment_id,
    cast(loan_id as {{ dbt.type_string() }})    as loan_id,
    cast(payment_date as date)                  as payment_date,
    cast(paid_principal as decimal(18, 6))      as paid_principal,
    cast(paid_interest as decimal(18, 6))       as paid_interest,
    cast(paid_fee as decimal(18, 6))            as paid_fee,
    cast(paid_other as decimal(18, 6))          as paid_other,
    cast(paid_tax as decimal(18, 6))            as paid_tax,
    cast(paid_fee_tax as decimal(18, 6))        as paid_fee_tax,
    cast(rebates as decimal(18, 6))             as rebates,
    cast(paid_total as decimal(18, 6))          as paid_total,
    cast(payment_status as {{ dbt.type_string() }}) as payment_status
from payments
