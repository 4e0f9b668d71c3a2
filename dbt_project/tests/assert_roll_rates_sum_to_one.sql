{#- kpis.md: the rates out of one bucket in one month are a distribution, so
    the rows of one (month_end, from_bucket) sum to 1. Fails with each group
    off by more than 1e-9. -#}
select
    month_end,
    from_bucket,
    sum(rate) as total_rate
from {{ ref('kpi_roll_rates') }}
group by month_end, from_bucket
having abs(sum(rate) - 1) > 1e-9
