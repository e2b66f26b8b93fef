"""Admin for marketers and approvers: authoring, the approvals queue, and the records.

Every write goes through the services, so the admin, the API and the tests behave the
same: saving an existing object is an edit through ``approvable_edit`` (an approved
object gets a new draft version while its published snapshot keeps serving), and
nothing goes live except through the approvals queue or, for offers without a
discount, the "Publish" action. One module per area:

- :mod:`.base`: :class:`~.base.ApprovableAdmin`, the one authoring path (create, edit,
  submit for approval) of everything that goes live only through an approval;
- :mod:`.offers`: offers, their terms guard and their stock;
- :mod:`.content`: slots, content variants, experiments and their arms;
- :mod:`.approvals`: the approvals queue, approval templates, the audit log, optimizer proposals;
- :mod:`.scarcity`: scarcity rules with their live preview, the claims ledger, the
  monitor's flags, evidence and holdouts;
- :mod:`.records`: what the decision engine recorded (assignments, exposures, personalization records).
"""

from personalization.admin import approvals, content, offers, records, scarcity  # noqa: F401 - registers them
