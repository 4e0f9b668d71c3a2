{#- The Cascade loan tape as delivered: one row per loan per accepted delivery
    (each tape is the full book on its date, so a loan repeats once per tape).
    Staging only names and types; the feed contract already enforced the rules. -#}
with loan_tape as (
    select * from {{ source('cascade', 'loan_data') }}
)

select
    cast(delivery_date as date)                   as delivery_date,
    cast(loan_id as {{ dbt.type_string() }})      as loan_id,
    cast(customer_id as {{ dbt.type_string() }})  as customer_id,
    cast(product_type as {{ dbt.type_string() }}) as product_type,
    cast(disbursement_date as date)               as disbursement_date,
    cast(disbursement_amount as decimal(18, 2))   as disbursement_amount,
    cast(tpv as decimal(18, 2))                   as tpv,
    cast(currency as {{ dbt.type_string() }})     as currency,
    cast(interest_rate_apr as decimal(18, 6))     as interest_rate_apr,
    cast(origination_fee as decimal(18, 6))       as origination_fee,
    cast(origination_fee_taxes as decimal(18, 6)) as origination_fee_taxes,
    cast(term as bigint)                          as term,
    cast(term_unit as {{ dbt.type_string() }})    as term_unit,
    cast(payment_frequency as {{ dbt.type_string() }}) as payment_frequency,
    cast(maturity_date as date)                   as maturity_date,
    cast(outstanding_principal as decimal(18, 2)) as outstanding_principal,
    cast(days_past_due as bigint)                 as days_past_due,
    cast(loan_status as {{ dbt.type_string() }})  as loan_status,
    cast(write_off_date as date)                  as write_off_date,
    cast(write_off_amount as decimal(18, 6))      as write_off_amount
from loan_tape
