{#- Collateral items per loan as of each Cascade delivery (optional table: a
    delivery without it has zero rows). A loan can hold several items, so
    there is no unique key below (delivery_date, loan_id). -#}
with collateral_items as (
    select * from {{ source('cascade', 'collateral') }}
)

select
    cast(delivery_date as date)                      as delivery_date,
    cast(loan_id as {{ dbt.type_string() }})         as loan_id,
    cast(collateral_type as {{ dbt.type_string() }}) as collateral_type,
    cast(collateral_value as decimal(18, 6))         as collateral_value
from collateral_items
