{#- The portfolio KPIs cut by product_type; one row per (month_end,
    product_type). Ratios are computed inside the product; sums add up to
    kpi_portfolio_monthly, distinct-customer counts do not (a customer can hold
    both products). -#}
{{ portfolio_kpis('product_type') }}
