{#- Cash received by the collections/treasury system: one row per payment, one
    file per business day. Only Settled Cascade payments appear here (a
    Reversed attempt never brought cash). -#}
with cash_received as (
    select * from {{ source('collections', 'collections') }}
)

select
    cast(delivery_date as date)                 as delivery_date,
    cast(payment_id as {{ dbt.type_string() }}) as payment_id,
    cast(loan_id as {{ dbt.type_string() }})    as loan_id,
    cast(received_date as date)                 as received_date,
    cast(amount as decimal(18, 6))              as amount,
    cast(channel as {{ dbt.type_string() }})    as channel,
    cast(is_recovery as boolean)                as is_recovery
from cash_received
