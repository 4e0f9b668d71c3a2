{#- The month-end snapshot of each calendar month: the latest Cascade tape dated
    inside it (kpis.md). A month without a tape has no row, and the link to the
    previous month is only set when that calendar month has a tape, so roll
    rates and 12-month windows never bridge a gap silently. -#}
with tape_dates as (
    select distinct delivery_date as tape_date
    from {{ ref('stg_cascade__loan_data') }}
),

tape_months as (
    select
        tape_date,
        {{ month_start('tape_date') }} as month_start,
        {{ month_seq('tape_date') }} as month_seq
    from tape_dates
),

month_end_tapes as (
    select
        month_start,
        month_seq,
        max(tape_date) as month_end,
        count(*) as tapes_in_month
    from tape_months
    group by month_start, month_seq
)

select
    this_month.month_start,
    this_month.month_end,
    this_month.month_seq,
    this_month.tapes_in_month,
    previous_month.month_end as previous_month_end
from month_end_tapes as this_month
left join month_end_tapes as previous_month
    on previous_month.month_seq = this_month.month_seq - 1
