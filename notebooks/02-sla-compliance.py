# ---
# jupyter:
#   kernelspec:
#     display_name: Python (ipchange)
#     language: python
#     name: ipchange
# ---

# %% [markdown]
# # SLA compliance

# %%
from ipchange_core import reports

# %% tags=["parameters"]
period: str = "last-week"  # last-week or an ISO week (2026-W47); a month or range also works
db_url: str = ""  # database URL or SQLite path (relative to the project root); empty for
# IPCHANGE_DB_URL, else data/ipchange.db, where `make demo` loads the demo data
policy_file: str = ""  # policy YAML extending the default, empty for the default policy
plotly_js: str = ""  # plotly.js for a report page (`ipchange report` sets it); empty in JupyterLab
trend_weeks: int = 8  # how many weeks the trend chart shows, ending with this period

# %%
data = reports.load(period, db_url=db_url, policy_file=policy_file, history_weeks=trend_weeks)
reports.plotly_loader(plotly_js) + reports.header(data)

# %% [markdown]
# The Monday review of last week's service levels: how often each target was met, how that
# compares with the week before and the weeks before that, and which tickets missed.

# %% [markdown]
# ## This period against its targets
#
# Each tile shows the share of decided requests that met the target: green when the target was
# reached, red when not, grey when no request was decided yet. Requests whose clock is still
# running ("still open") and requests a metric does not apply to are left out of the percentage.
# Correct intake also stays open for an agent's ticket whose history does not record how it was
# created (no department, status or owner events): unknown is not counted as a breach.
# The change is in percentage points against the previous period.

# %%
reports.sla_tiles(data)

# %% [markdown]
# The counts behind the tiles.

# %%
reports.sla_table(data)

# %% [markdown]
# ## Trend
#
# Weekly compliance for each metric over the last weeks. A gap means no request of that week was
# decided for the metric.

# %%
reports.sla_trend(data, weeks=trend_weeks)

# %% [markdown]
# ## Breaches
#
# Every missed target, worst first within each metric. *Missed by* is in business hours
# (9 to 5 Central, Monday to Friday): how long past the target the ticket was routed, confirmed
# or changed.

# %%
reports.breach_list(data)

# %% [markdown]
# ## At risk
#
# Open requests of this period whose clock is still running, least time first: what will breach
# or be billed wrongly unless someone acts, with the business hours left (as of the time this
# report was generated) and what to do. The morning check (`ipchange report check`) lists the
# same for every open request.

# %%
reports.at_risk(data)

# %% [markdown]
# ## Routing latency
#
# Business hours from ticket creation to the Implementation department, for every routed request;
# the dashed line is the target. Bars right of the line are breaches. A customer ticket without
# department history (no audit row of its creation, no recorded move) has routing unknown: it is
# not shown here and is left out of the routing percentage, like a clock still running.

# %%
reports.routing_latency(data)

# %% [markdown]
# ## By agent and by engineer
#
# Compliance per person for the requests they took (agents) or carried out (engineers).

# %%
reports.by_person(data, "agent")

# %%
reports.by_person(data, "engineer")

# %%
reports.provenance(data)
