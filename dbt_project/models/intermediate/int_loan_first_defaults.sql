{#- When each loan first defaulted, for vintage curves (and PD/MDR in the Python
    metrics): the first month-end snapshot where it was at DPD >= 90 or Written
    Off, and its exposure there (the write-off amount if it was already written
    off, else the outstanding principal). Exposure is frozen at that first
    snapshot, so later amortisation or write-off does not move the curve.
    One row per loan that ever defaulted. -#}
with default_observations as (
    select
        loan_id,
        vintage_month,
        month_end,
        loan_status,
        case
            when loan_status = 'Written Off' then write_off_amount
            else outstanding_principal
        end as exposure,
        row_number() over (partition by loan_id order by month_end) as observation_order
    from {{ ref('int_loan_month_panel') }}
    where is_in_default
)

select
    loan_id,
    vintage_month,
    month_end as first_default_month_end,
    loan_status as status_at_default,
    exposure as default_exposure
from default_observations
where observation_order = 1
