# ---
# jupyter:
#   kernelspec:
#     display_name: Python (ipchange)
#     language: python
#     name: ipchange
# ---

# %% [markdown]
# # Intake log

# %%
from ipchange_core import reports

# %% tags=["parameters"]
period: str = "last-week"  # last-week, last-month, an ISO week (2026-W47), a month (2026-11)
# or a range of dates (2026-11-02_2026-11-15)
db_url: str = ""  # database URL or SQLite path (relative to the project root); empty for
# IPCHANGE_DB_URL, else data/ipchange.db, where `make demo` loads the demo data
policy_file: str = ""  # policy YAML extending the default, empty for the default policy
plotly_js: str = ""  # plotly.js for a report page (`ipchange report` sets it); empty in JupyterLab

# %%
data = reports.load(period, db_url=db_url, policy_file=policy_file)
reports.plotly_loader(plotly_js) + reports.header(data)

# %% [markdown]
# Every IP change request received in the period, so that the TSC and the implementation lead can
# check that each one was logged with the "cloud info" and routed to Implementation.

# %% [markdown]
# ## At a glance
#
# **Short notice** means the customer asked for a change sooner than the policy's notice period
# (48 hours by default); those requests may carry the expedite fee. **Not routed yet** counts
# requests whose ticket never reached the Implementation department. **Intake problems** counts
# requests logged without a ticket, without an intake record, or with cloud-info fields missing.

# %%
reports.intake_summary(data)

# %% [markdown]
# ## When and how requests arrived
#
# Requests by channel (phone, chat, e-mail or a customer's own ticket), by reason, and per day.

# %%
reports.intake_counts(data)

# %% [markdown]
# Arrivals by weekday and hour (local time). Dark cells are the busy hours to staff for.

# %%
reports.arrivals_heatmap(data)

# %% [markdown]
# ## Every request
#
# One row per request, oldest first. *Notice h* is the hours between receipt and the requested
# change time; *Routing* says whether the ticket reached Implementation within the target;
# *State* is where the change stands now; *Intake from* is where the intake record was read: the
# agent's "cloud info" macro in a Kayako post (`post 4412`, and `corrects post …` when the macro
# was posted again) or an intake file, and the record of the other source it replaced, if any.
# Contact details are left out on purpose.

# %%
reports.intake_log(data)

# %% [markdown]
# ## Data quality
#
# What could not be matched or was incomplete. Tickets without an intake record were never logged
# in the intake sheet; intake records without a ticket were logged but never got a ticket number.
# Agent tickets without a recorded creation state have no department, status or owner history,
# so whether they were created as Implementation / New / unassigned is unknown: their correct
# intake is open, not breached, until that history is loaded.
# Customer tickets without department history have no recorded department change and no audit
# row of their creation: customer tickets start in Customer Service, so their routing time is
# unknown (not 0 h) and they are left out of the routing percentage until the audit log is loaded.
# Rejected rows are input lines refused at load time (the loads folder has the details).

# %%
reports.data_quality(data)

# %%
reports.provenance(data)
