# ---
# jupyter:
#   kernelspec:
#     display_name: Python (ipchange)
#     language: python
#     name: ipchange
# ---

# %% [markdown]
# # Ticket explorer

# %%
from ipchange_core import reports

# %% tags=["parameters"]
period: str = "last-month"  # last-month, last-week, an ISO week (2026-W47), a month (2026-11)
# or a range of dates (2026-11-02_2026-11-15)
db_url: str = ""  # database URL or SQLite path (relative to the project root); empty for
# IPCHANGE_DB_URL, else data/ipchange.db, where `make demo` loads the demo data
policy_file: str = ""  # policy YAML extending the default, empty for the default policy
plotly_js: str = ""  # plotly.js for a report page (`ipchange report` sets it); empty in JupyterLab
what_if_threshold_hours: float = 24.0  # alternative short-notice threshold, hours
what_if_fee: float = 300.0  # alternative expedite fee, in the policy currency
input_files: str = ""  # export files to read instead of the database, separated by ";"

# %%
data = reports.load(period, db_url=db_url, policy_file=policy_file, input_files=input_files)
reports.plotly_loader(plotly_js) + reports.header(data)

# %% [markdown]
# For analysts: the distributions behind the reports, and the same requests judged again under a
# different policy ("what if the notice threshold were 24 hours, or the fee \$300?"). It reads the
# database, or any help-desk export given in `input_files` (Kayako XML, report or audit CSV, the
# canonical CSV/XLSX files) without loading it. Open this notebook in JupyterLab (`make lab`) to
# explore further with the `ipchange_core` API, in a cell of your own:
#
# - `ipchange_core.load_requests("2026-11")` gives the requests of a period as a DataFrame, one
#   row per request with every computed field (notice hours, fee status, fee in cents, SLA
#   states); `db=` names another database, `policy=` judges them by another policy.
# - `ipchange_core.load_frames("2026-11")` gives the four typed tables (`tickets`,
#   `ticket_events`, `intake`, `changes`) that `ipchange_core.evaluate(frames)` judges; edit them
#   and evaluate again. Frames read by yourself (e.g. with `pd.read_csv`) must carry the same
#   columns and types: `evaluate` names the table and column that do not.
# - `data` above is what every section reads: `data.requests` is the period's requests, and each
#   section is one call, e.g. `reports.fee_table(data, "waived")` or `reports.sla_tiles(data)`.
#
# A period is `last-week`, `last-month`, an ISO week (`2026-W47`), a month (`2026-11`) or a range
# of dates (`2026-11-02_2026-11-15`). The database is the one in `db_url` (empty: the default,
# `data/ipchange.db`, where `make demo` loads the demo data); relative paths are relative to the
# project root. The provenance at the end names the database each report read.

# %% [markdown]
# ## Distributions
#
# Notice given by customers, and business hours to order confirmation.

# %%
reports.distributions(data)

# %% [markdown]
# Requests by fee status: one bar per status, those given enough notice included.

# %%
reports.fee_chart(data, every_status=True)

# %% [markdown]
# ## What if
#
# The same requests judged under the alternative threshold and fee (parameters of this notebook).

# %%
alternative = reports.rejudge(
    data,
    reports.what_if_policy(data.policy, threshold_hours=what_if_threshold_hours, fee=what_if_fee),
)
reports.what_if(data, alternative)

# %% [markdown]
# ## Requests
#
# The first requests of the period with their computed fee status and flags.

# %%
reports.sample_requests(data)

# %%
reports.provenance(data)
