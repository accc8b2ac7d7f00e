# ---
# jupyter:
#   kernelspec:
#     display_name: Python (ipchange)
#     language: python
#     name: ipchange
# ---

# %% [markdown]
# # Fee billing

# %%
from ipchange_core import evidence, reports

# %% tags=["parameters"]
period: str = "last-month"  # last-month or a month (2026-11); an ISO week or range also works
db_url: str = ""  # database URL or SQLite path (relative to the project root); empty for
# IPCHANGE_DB_URL, else data/ipchange.db, where `make demo` loads the demo data
policy_file: str = ""  # policy YAML extending the default, empty for the default policy
plotly_js: str = ""  # plotly.js for a report page (`ipchange report` sets it); empty in JupyterLab

# %%
data = reports.load(period, db_url=db_url, policy_file=policy_file)
reports.plotly_loader(plotly_js) + reports.header(data)

# %% [markdown]
# The expedite fees of the period: what can be invoiced, what waits for the person of record's
# sign-off, what was waived and what a person must look at first.

# %% [markdown]
# ## Summary
#
# A request given less notice than the policy asks is an expedite. It is **billable** once the
# account's person of record accepted the fee and the change was done; **signed off, change not
# yet done** will become billable; **pending sign-off** has no acceptance yet; **waived** fees
# were waived with a reason; **needs review** means the evidence is contradictory or incomplete.
# The invoice file is `fees-<period>.csv` / `.xlsx` from `ipchange fees export`.

# %%
reports.fee_summary(data)

# %% [markdown]
# Expedite requests of the period by fee status.

# %%
reports.fee_chart(data)

# %% [markdown]
# ## Billable fees, with sign-off evidence
#
# Who signed off and when. The person of record is shown, never contact details.

# %%
reports.fee_table(data, "billable")

# %% [markdown]
# ## Signed off, change not yet done

# %%
reports.fee_table(data, "awaiting_change")

# %% [markdown]
# ## Pending sign-off
#
# Expedites without the person of record's acceptance: chase these before invoicing.

# %%
reports.fee_table(data, "pending_sign_off")

# %% [markdown]
# ## Waived

# %%
reports.fee_table(data, "waived")

# %% [markdown]
# ## Needs review
#
# The flags say what is wrong, e.g. the fee was accepted by someone other than the person of
# record, or the person of record is unknown.

# %%
reports.fee_table(data, "needs_review")

# %% [markdown]
# ## Corrections, credits and evidence
#
# What changed after a fee was exported: corrections found by an export (a waiver or
# cancellation loaded later, a corrected sign-off), waivers and credits recorded with
# `ipchange fees waive|credit`, each with its reason, who recorded it and its batch. Every fee
# links to its evidence page (timeline, notice against the policy, sign-off, ledger history).

# %%
evidence.ledger_section(data, db_url)

# %% [markdown]
# ## Totals per account

# %%
reports.fee_totals(data, "account")

# %% [markdown]
# ## Totals per reseller

# %%
reports.fee_totals(data, "reseller")

# %%
reports.provenance(data)
