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
period: str = "2026-11"  # ISO week (2026-W47), month (2026-11) or range (2026-11-02_2026-11-15)
db_url: str = ""  # database URL, empty for IPCHANGE_DB_URL or data/ipchange.db
policy_file: str = ""  # policy YAML extending the default, empty for the default policy
plotly_js: str = "../plotly.min.js"  # plotly.js relative to the report, empty to embed it inline
what_if_threshold_hours: float = 24.0  # alternative short-notice threshold, hours
what_if_fee: float = 300.0  # alternative expedite fee, in the policy currency
input_files: str = ""  # export files to read instead of the database, separated by ";"

# %%
data = reports.load(period, db_url=db_url, policy_file=policy_file, input_files=input_files)
reports.plotly_loader(plotly_js) + reports.header(data)

# %% [markdown]
# For analysts: the distributions behind the reports, and the same requests judged again under a
# different policy ("what if the notice threshold were 24 hours, or the fee $300?"). It reads the
# database, or any help-desk export given in `input_files` (Kayako XML, report or audit CSV, the
# canonical CSV/XLSX files) without loading it. Open this notebook in JupyterLab (`make lab`) to
# explore further with the `ipchange_core` API.

# %% [markdown]
# ## Distributions
#
# Notice given by customers, business hours to order confirmation, and fee statuses.

# %%
reports.distributions(data)

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
