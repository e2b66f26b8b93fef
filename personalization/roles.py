"""Personalization rights of the staff roles (merged into journeys.roles at import)."""

from journeys.roles import ROLE_PERMISSIONS

AUTHORED = ("offer", "slot", "contentvariant", "experiment", "experimentarm", "scarcityrule")
RECORDS = (
    "assignment",
    "exposure",
    "personalizationrecord",
    "approvalrequest",
    "auditlog",
    "optimizationproposal",
    "ruleevidence",
    "holdoutmembership",
    "claimledger",
    "monitorflag",
)

ROLE_PERMISSIONS["Marketers"].update(
    {f"personalization.{model}": ("view", "add", "change") for model in AUTHORED}
    | {f"personalization.{model}": ("view",) for model in RECORDS}
)
ROLE_PERMISSIONS["Approvers"].update(
    {f"personalization.{model}": ("view",) for model in AUTHORED + RECORDS}
    | {
        "personalization.approvalrequest": ("view", "change"),
        "personalization.optimizationproposal": ("view", "change"),
        # resolving a monitor flag after looking into it
        "personalization.monitorflag": ("view", "change"),
    }
)
ROLE_PERMISSIONS["Analysts"].update({f"personalization.{model}": ("view",) for model in AUTHORED + RECORDS})
