{#- Borrowers as of each Cascade delivery: one row per customer per delivery.
    PII never reaches the warehouse: names and phones were dropped and tax id /
    e-mail keyed-hashed before the typed zone, so only the hashes are staged. -#}
with customers as (
    select * from {{ source('cascade', 'customer_data') }}
)

select
    cast(delivery_date as date)                  as delivery_date,
    cast(customer_id as {{ dbt.type_string() }}) as customer_id,
    cast(tax_id_hmac as {{ dbt.type_string() }}) as tax_id_hmac,
    cast(email_hmac as {{ dbt.type_string() }})  as email_hmac,
    cast(segment as {{ dbt.type_string() }})     as segment,
    cast(industry as {{ dbt.type_string() }})    as industry,
    cast(region as {{ dbt.type_string() }})      as region,
    cast(kam_id as {{ dbt.type_string() }})      as kam_id,
    cast(legal_type as {{ dbt.type_string() }})  as legal_type
from customers
