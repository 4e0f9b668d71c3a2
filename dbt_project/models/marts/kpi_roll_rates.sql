{#- Roll rates between consecutive month-end snapshots t-1 -> t (kpis.md): every
    loan active at t-1 moves from its bucket at t-1 to its bucket at t (paid_off
    when it is Complete, fully repaid or absent at t; written_off first). Rates
    are OPB-weighted at t-1 and sum to 1 per (month_end, from_bucket). When the
    calendar month before t has no tape, t has no rows: a two-month jump is not
    a monthly roll rate. -#}
with consecutive_snapshots as (
    select month_end, previous_month_end
    from {{ ref('int_month_end_snapshots') }}
    where previous_month_end is not null
),

loan_panel as (
    select month_end, loan_id, is_active, dpd_bucket, outstanding_principal
    from {{ ref('int_loan_month_panel') }}
),

loans_active_at_start as (
    select
        snapshot.month_end,
        loan.loan_id,
        loan.dpd_bucket as from_bucket,
        loan.outstanding_principal as opb_at_start
    from consecutive_snapshots as snapshot
    inner join loan_panel as loan
        on loan.month_end = snapshot.previous_month_end
    where loan.is_active
),

loan_moves as (
    select
        start_state.month_end,
        start_state.from_bucket,
        coalesce(end_state.dpd_bucket, 'paid_off') as to_bucket,
        start_state.opb_at_start
    from loans_active_at_start as start_state
    left join loan_panel as end_state
        on end_state.month_end = start_state.month_end
        and end_state.loan_id = start_state.loan_id
),

bucket_moves as (
    select
        month_end,
        from_bucket,
        to_bucket,
        sum(opb_at_start) as opb_from
    from loan_moves
    group by month_end, from_bucket, to_bucket
)

select
    month_end,
    from_bucket,
    to_bucket,
    opb_from,
    {{ safe_divide('opb_from', 'sum(opb_from) over (partition by month_end, from_bucket)') }} as rate
from bucket_moves
