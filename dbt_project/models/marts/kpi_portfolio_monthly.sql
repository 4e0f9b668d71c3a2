{#- Portfolio KPIs of kpis.md, one row per month-end snapshot. The definitions
    live in the portfolio_kpis macro, shared with the by-segment and by-product
    cuts so the three marts can never disagree. -#}
{{ portfolio_kpis() }}
