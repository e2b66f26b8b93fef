"""Offers: authored like every approvable object, with terms that really end and stock that carries its confirmation."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from personalization.admin.base import APPROVAL_FIELDS, ApprovableAdmin
from personalization.models import Offer
from personalization.services.approvals import ApprovalError, offer_publish_without_approval
from personalization.services.scarcity.offers import OfferTermsRefused, offer_edit, offer_stock_set, offer_terms_refusal


class OfferTermsForm(forms.ModelForm):
    """An offer form that refuses, as a form error, relaunching ended terms within the
    cooldown or moving a deadline that visitors saw a countdown to (``offer_terms_refusal``)."""

    def clean(self):
        data = super().clean()
        if self.instance.pk is not None:
            # the instance still holds the stored values here; the form's go on it after clean()
            changes = {name: data[name] for name in self.changed_data if name in data}
            refusal = offer_terms_refusal(offer=self.instance, changes=changes)
            if refusal is not None:
                raise forms.ValidationError(refusal, code=OfferTermsRefused.code)
        return data


@admin.register(Offer)
class OfferAdmin(ApprovableAdmin):
    """Offers, edited through ``offer_edit`` (the terms guard) and ``offer_stock_set`` (stock
    confirmed by the person who typed it, and fresh low-stock evidence)."""

    form = OfferTermsForm
    list_display = [
        "name",
        "sku",
        "site",
        "price",
        "currency",
        "discount_percent",
        "stock_remaining",
        "stock_updated_at",
        "stock_confirmed_by",
        "ends_at",
        "status",
        "version",
        "published_version",
    ]
    list_filter = ["site", "status", "currency"]
    search_fields = ["name", "sku"]
    readonly_fields = [*APPROVAL_FIELDS, "stock_updated_at", "stock_confirmed_by"]
    actions = ["submit_for_approval", "publish"]

    def create(self, request, *, obj, formsets):
        stock, obj.stock_remaining = obj.stock_remaining, None
        offer = super().create(request, obj=obj, formsets=formsets)
        if stock is not None:
            offer_stock_set(offer=offer, stock_remaining=stock, actor=request.user)
            offer.refresh_from_db()
        return offer

    def edit(self, request, *, obj, changes, formsets):
        # A stock count the person typed is a stock report, confirmed by them as of now
        # (with the restock date when that changed too); the rest is an edit of the offer.
        stock = {}
        if "stock_remaining" in changes:
            stock = {name: changes.pop(name) for name in ("stock_remaining", "restock_at") if name in changes}
        try:
            edited = offer_edit(offer=obj, actor=request.user, changes=changes) if changes else obj
        except OfferTermsRefused as error:  # the form checked it; this is a race with another edit
            self.message_user(request, str(error), messages.ERROR)
            return obj
        if stock:
            edited = offer_stock_set(offer=edited, actor=request.user, **stock)
        return edited

    @admin.action(description="Publish (offers without a discount)", permissions=["change"])
    def publish(self, request, queryset):
        for offer in queryset:
            try:
                offer = offer_publish_without_approval(offer=offer, actor=request.user)
            except ApprovalError as error:
                self.message_user(request, f"{offer}: {error}", messages.ERROR)
            else:
                self.message_user(request, f"{offer} version {offer.version} is live.", messages.SUCCESS)
