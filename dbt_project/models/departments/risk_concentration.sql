{#- Concentration of the book per month-end: the KPI mart's top10_concentration
    and HHI (read, not recomputed), with what a risk committee asks next: the
    largest single obligor's share, how many obligors are above the single-
    obligor limit of the credit facility (var single_obligor_limit, 4 % of
    OPB as in the covenant monitor), and the effective number of obligors
    (1 / HHI: the count of equal-sized borrowers with the same concentration).
    One row per month_end. -#}
{%- set single_obligor_limit = var('single_obligor_limit', 0.04) %}

with book_kpis as (
    select month_end, opb, active_customers, top10_concentration, hhi
    from {{ ref('kpi_portfolio_monthly') }}
),

customer_balances as (
    select
        month_end,
        customer_id,
        sum(outstanding_principal) as customer_opb
    from {{ ref('int_loan_month_panel') }}
    where is_active
    group by month_end, customer_id
),

obligor_limits as (
    select
        customer_balances.month_end,
        max(customer_balances.customer_opb) as largest_obligor_opb,
        count(case
            when customer_balances.customer_opb > {{ single_obligor_limit }} * book_kpis.opb then customer_balances.customer_id
        end) as obligors_over_single_limit
    from customer_balances
    inner join book_kpis
        on book_kpis.month_end = customer_balances.month_end
    group by customer_balances.month_end
)

select
    book_kpis.month_end,
    book_kpis.opb,
    book_kpis.active_customers,
    book_kpis.top10_concentration,
    book_kpis.hhi,
    {{ safe_divide('obligor_limits.largest_obligor_opb', 'book_kpis.opb') }} as largest_obligor_share,
    coalesce(obligor_limits.obligors_over_single_limit, 0) as obligors_over_single_limit,
    {{ safe_divide('1', 'book_kpis.hhi') }} as effective_obligors
from book_kpis
left join obligor_limits
    on obligor_limits.month_end = book_kpis.month_end
