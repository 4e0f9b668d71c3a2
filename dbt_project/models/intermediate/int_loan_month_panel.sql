{#- The compact core of every portfolio KPI, roll rate and vintage: one row per
    loan per month-end tape, with the borrower's segment from the same delivery,
    the loan's state (is_active, dpd_bucket) and the in-month event flags. Only
    month-end tapes are kept; intra-month tapes never reach a mart. -#}
with month_end_snapshots as (
    select month_start, month_end, month_seq
    from {{ ref('int_month_end_snapshots') }}
),

month_end_loans as (
    select
        snapshot.month_start,
        snapshot.month_end,
        snapshot.month_seq,
        loan.*
    from {{ ref('stg_cascade__loan_data') }} as loan
    inner join month_end_snapshots as snapshot
        on loan.delivery_date = snapshot.month_end
),

month_end_customers as (
    select delivery_date, customer_id, segment, legal_type
    from {{ ref('stg_cascade__customer_data') }}
    where delivery_date in (select month_end from month_end_snapshots)
)

select
    loan.month_end,
    loan.month_start,
    loan.month_seq,
    loan.loan_id,
    loan.customer_id,
    customer.segment,
    customer.legal_type,
    loan.product_type,
    loan.currency,
    loan.disbursement_date,
    {{ month_start('loan.disbursement_date') }} as vintage_month,
    loan.disbursement_amount,
    loan.tpv,
    loan.interest_rate_apr,
    loan.origination_fee,
    loan.origination_fee_taxes,
    loan.term,
    loan.term_unit,
    loan.payment_frequency,
    loan.maturity_date,
    loan.outstanding_principal,
    loan.days_past_due,
    loan.loan_status,
    loan.write_off_date,
    loan.write_off_amount,
    {{ is_active_loan('loan.loan_status', 'loan.outstanding_principal') }} as is_active,
    {{ dpd_bucket('loan.loan_status', 'loan.outstanding_principal', 'loan.days_past_due') }} as dpd_bucket,
    (loan.days_past_due >= 90 or loan.loan_status = 'Written Off') as is_in_default,
    (loan.disbursement_date between loan.month_start and loan.month_end) as is_disbursed_in_month,
    (loan.write_off_date is not null
        and loan.write_off_date between loan.month_start and loan.month_end) as is_written_off_in_month
from month_end_loans as loan
left join month_end_customers as customer
    on customer.delivery_date = loan.delivery_date
    and customer.customer_id = loan.customer_id
