{#-
    The portfolio KPI catalog of kpis.md, written once. kpi_portfolio_monthly
    calls it without a cut, kpi_portfolio_monthly_by_segment with 'segment',
    kpi_portfolio_monthly_by_product with 'product_type': the three marts
    cannot drift apart, and every ratio of a cut is computed from that cut's
    own numerator and denominator (OPB, concentration, the 12-month average
    OPB), so the cut sums add up to the portfolio totals.

    Rows: one per month-end snapshot (and per cut value carried by any loan of
    that snapshot's book, so a cut whose only activity is a payment or a
    write-off still has its row). A loan's cut is read from the snapshot the
    KPI row belongs to; flows follow the loan's cut in that snapshot.
-#}
{% macro portfolio_kpis(cut_column=none) %}
{%- set cut_select = (cut_column ~ ',') if cut_column else '' -%}
{%- set par_thresholds = [1, 7, 15, 30, 60, 90, 180] %}

with month_end_snapshots as (
    select month_end, month_seq
    from {{ ref('int_month_end_snapshots') }}
),

loan_panel as (
    select *
    from {{ ref('int_loan_month_panel') }}
),

-- stocks of the tape and the events it dates inside the month
book_positions as (
    select
        month_end,
        {{ cut_select }}
        sum(case when is_active then outstanding_principal else 0 end) as opb,
        count(case when is_active then loan_id end) as active_loans,
        count(distinct case when is_active then customer_id end) as active_customers,
        sum(case when is_disbursed_in_month then disbursement_amount else 0 end) as disbursed_amount,
        count(case when is_disbursed_in_month then loan_id end) as disbursed_loans,
        {%- for days in par_thresholds %}
        sum(case when is_active and days_past_due >= {{ days }} then outstanding_principal else 0 end) as dpd{{ days }}_balance,
        {%- endfor %}
        sum(case when is_written_off_in_month then write_off_amount else 0 end) as writeoff_amount,
        -- doubles: DECIMAL(18,6) x DECIMAL(18,2) would overflow a DECIMAL(18,8) on a large book
        sum(case when is_active
            then cast(interest_rate_apr as {{ abaco.float_type() }}) * cast(outstanding_principal as {{ abaco.float_type() }})
            else 0 end) as apr_weighted_balance
    from loan_panel
    group by month_end {{ ',' ~ cut_column if cut_column }}
),

customer_balances as (
    select
        month_end,
        {{ cut_select }}
        customer_id,
        sum(outstanding_principal) as customer_opb
    from loan_panel
    where is_active
    group by month_end, {{ cut_select }} customer_id
),

ranked_customer_balances as (
    select
        customer_balances.*,
        row_number() over (
            partition by month_end {{ ',' ~ cut_column if cut_column }}
            order by customer_opb desc, customer_id
        ) as opb_rank
    from customer_balances
),

-- top-10 OPB and the HHI numerator (sum of squared customer OPB; / OPB^2 below)
concentration as (
    select
        month_end,
        {{ cut_select }}
        sum(case when opb_rank <= 10 then customer_opb else 0 end) as top10_opb,
        sum(cast(customer_opb as {{ abaco.float_type() }}) * cast(customer_opb as {{ abaco.float_type() }})) as customer_opb_squares
    from ranked_customer_balances
    group by month_end {{ ',' ~ cut_column if cut_column }}
),

payment_flows as (
    select
        payment.month_end,
        {{ ('loan.' ~ cut_column ~ ',') if cut_column }}
        sum(payment.collected_principal) as collected_principal,
        sum(payment.collected_interest) as collected_interest,
        sum(payment.collected_fees) as collected_fees,
        sum(payment.collected_total) as collected_total,
        sum(payment.revenue) as revenue,
        sum(payment.collected_principal_12m) as collected_principal_12m,
        sum(payment.revenue_12m) as revenue_12m
    from {{ ref('int_payments_by_month') }} as payment
    inner join loan_panel as loan
        on loan.month_end = payment.month_end
        and loan.loan_id = payment.loan_id
    group by payment.month_end {{ ', loan.' ~ cut_column if cut_column }}
),

schedule_flows as (
    select
        due.month_end,
        {{ ('loan.' ~ cut_column ~ ',') if cut_column }}
        sum(due.scheduled_due) as scheduled_due
    from {{ ref('int_schedule_due_by_month') }} as due
    inner join loan_panel as loan
        on loan.month_end = due.month_end
        and loan.loan_id = due.loan_id
    group by due.month_end {{ ', loan.' ~ cut_column if cut_column }}
),

-- every month-end snapshot inside the 12 calendar months ending at each month_end
trailing_snapshots as (
    select
        kpi_month.month_end,
        window_month.month_end as window_month_end
    from month_end_snapshots as kpi_month
    inner join month_end_snapshots as window_month
        on window_month.month_seq between kpi_month.month_seq - 11 and kpi_month.month_seq
),

-- a snapshot where the cut holds nothing counts as OPB 0 in the cut's average
trailing_opb as (
    select
        book.month_end,
        {{ ('book.' ~ cut_column ~ ',') if cut_column }}
        avg(coalesce(window_book.opb, 0)) as average_opb_12m
    from book_positions as book
    inner join trailing_snapshots as window_snapshot
        on window_snapshot.month_end = book.month_end
    left join book_positions as window_book
        on window_book.month_end = window_snapshot.window_month_end
        {{ abaco.cut_matches(cut_column, 'window_book', 'book') }}
    group by book.month_end {{ ', book.' ~ cut_column if cut_column }}
)

select
    book.month_end,
    {{ ('book.' ~ cut_column ~ ',') if cut_column }}
    book.opb,
    book.active_loans,
    book.active_customers,
    book.disbursed_amount,
    book.disbursed_loans,
    {{ abaco.safe_divide('book.disbursed_amount', 'book.disbursed_loans') }} as avg_ticket,
    {%- for days in par_thresholds if days != 180 %}
    {{ abaco.safe_divide('book.dpd' ~ days ~ '_balance', 'book.opb') }} as par{{ days }},
    {%- endfor %}
    {{ abaco.safe_divide('book.dpd90_balance', 'book.opb') }} as npl_ratio,
    {{ abaco.safe_divide('book.dpd180_balance', 'book.opb') }} as npl180_ratio,
    book.writeoff_amount,
    coalesce(payments.collected_principal, 0) as collected_principal,
    coalesce(payments.collected_interest, 0) as collected_interest,
    coalesce(payments.collected_fees, 0) as collected_fees,
    coalesce(payments.collected_total, 0) as collected_total,
    coalesce(payments.revenue, 0) as revenue,
    coalesce(schedules.scheduled_due, 0) as scheduled_due,
    {{ abaco.safe_divide('coalesce(payments.collected_total, 0)', 'schedules.scheduled_due') }} as collection_rate,
    {{ abaco.safe_divide('book.apr_weighted_balance', 'book.opb') }} as weighted_apr,
    {{ abaco.safe_divide('concentration.top10_opb', 'book.opb') }} as top10_concentration,
    {{ abaco.safe_divide('concentration.customer_opb_squares',
                         'cast(book.opb as ' ~ abaco.float_type() ~ ') * cast(book.opb as ' ~ abaco.float_type() ~ ')') }} as hhi,
    {{ abaco.safe_divide('coalesce(payments.collected_principal_12m, 0)', 'book.opb') }} as rotation_12m,
    {{ abaco.safe_divide('coalesce(payments.revenue_12m, 0)', 'trailing_average.average_opb_12m') }} as yield_12m
from book_positions as book
left join concentration
    on concentration.month_end = book.month_end
    {{ abaco.cut_matches(cut_column, 'concentration', 'book') }}
left join payment_flows as payments
    on payments.month_end = book.month_end
    {{ abaco.cut_matches(cut_column, 'payments', 'book') }}
left join schedule_flows as schedules
    on schedules.month_end = book.month_end
    {{ abaco.cut_matches(cut_column, 'schedules', 'book') }}
left join trailing_opb as trailing_average
    on trailing_average.month_end = book.month_end
    {{ abaco.cut_matches(cut_column, 'trailing_average', 'book') }}
{% endmacro %}


{#- Extra join condition on the cut column; null-safe, so a cut value that is
    missing upstream still lines up with itself instead of dropping flows. -#}
{% macro cut_matches(cut_column, left_alias, right_alias) -%}
    {%- if cut_column -%}
    and {{ left_alias }}.{{ cut_column }} is not distinct from {{ right_alias }}.{{ cut_column }}
    {%- endif -%}
{%- endmacro %}
