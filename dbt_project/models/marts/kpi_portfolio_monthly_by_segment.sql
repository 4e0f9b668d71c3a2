{#- The portfolio KPIs cut by the borrower's segment (Customer Data of the same
    tape); one row per (month_end, segment). Ratios are computed inside the
    segment; sums add up to kpi_portfolio_monthly. -#}
{{ portfolio_kpis('segment') }}
