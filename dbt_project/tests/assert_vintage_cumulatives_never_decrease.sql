{#- Cumulative curves are cumulative: within a vintage, cum_default_principal
    and cum_writeoff_amount never go down from one month-end to the next.
    A drop means a default exposure was re-measured or a written-off loan
    left the tape. Fails with each (vintage, month_end) that drops. -#}
with vintage_steps as (
    select
        vintage_month,
        month_end,
        cum_default_principal,
        cum_writeoff_amount,
        lag(cum_default_principal) over (partition by vintage_month order by month_end) as previous_default_principal,
        lag(cum_writeoff_amount) over (partition by vintage_month order by month_end) as previous_writeoff_amount
    from {{ ref('kpi_vintage_curves') }}
)

select *
from vintage_steps
where cum_default_principal < previous_default_principal
    or cum_writeoff_amount < previous_writeoff_amount
