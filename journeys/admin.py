from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from rest_framework.utils.encoders import JSONEncoder

from core.admin import ReadOnlyAdmin
from journeys.models import (
    ConversionEvent,
    CrossDeviceLink,
    IdempotencyConflict,
    JourneyPathRule,
    JourneySession,
    PersonaChange,
    QuarantinedEvent,
    Site,
    Visitor,
)
from journeys.selectors import session_timeline
from journeys.services.privacy import visitor_erase, visitor_export
from journeys.services.sites import origins_normalize, path_rules_changed, site_changed, site_secret_rotate

admin.site.site_header = "Journey Engine"
admin.site.site_title = "Journey Engine"
admin.site.index_title = "Journeys, personalization and analytics"


class SiteForm(forms.ModelForm):
    class Meta:
        model = Site
        fields = ["name", "domain", "allowed_origins", "is_active"]

    def clean_allowed_origins(self):
        try:
            return origins_normalize(self.cleaned_data["allowed_origins"])
        except ValidationError as error:
            raise forms.ValidationError(error.message_dict["allowed_origins"]) from None


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    form = SiteForm
    list_display = ["name", "domain", "public_key", "origins", "secret_key_hint", "is_active", "created_at"]
    readonly_fields = ["public_key", "secret_key_hint", "secret_key_rotated_at", "created_at"]
    search_fields = ["name", "domain"]
    actions = ["rotate_secret_key"]

    @admin.display(description="allowed origins")
    def origins(self, obj: Site) -> str:
        return ", ".join(obj.allowed_origins)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        site_changed()

    @admin.action(description="Rotate the secret key (the new key is shown once)", permissions=["change"])
    def rotate_secret_key(self, request, queryset):
        for site in queryset:
            secret_key = site_secret_rotate(site=site)
            self.message_user(
                request,
                f"New secret key of {site.name}, shown only now (the previous one no longer works): {secret_key}",
                messages.WARNING,
            )


@admin.register(JourneyPathRule)
class JourneyPathRuleAdmin(admin.ModelAdmin):
    list_display = ["priority", "name", "site", "device_types", "sources", "returning", "path", "is_active"]
    list_display_links = ["name"]
    list_editable = ["priority", "is_active"]
    list_filter = ["site", "path", "is_active"]
    ordering = ["site", "priority"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        path_rules_changed()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        path_rules_changed()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        path_rules_changed()


class PersonaChangeInline(admin.TabularInline):
    model = PersonaChange
    fields = ["changed_at", "from_persona", "to_persona", "confidence", "source"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Visitor)
class VisitorAdmin(ReadOnlyAdmin):
    list_display = [
        "visitor_id",
        "site",
        "persona",
        "consent_personalization",
        "consent_cross_device",
        "session_count",
        "last_seen_at",
    ]
    list_filter = ["site", "consent_personalization", "consent_cross_device", "persona"]
    search_fields = ["visitor_id"]
    inlines = [PersonaChangeInline]
    exclude = ["user_key"]
    actions = ["export_visitors", "erase_visitors"]

    # Privacy requests go through the services, with their own rights (the "Privacy
    # officers" role): a plain delete would neither wait for the visitor's traffic nor
    # remove the quarantined payloads and conflict logs that name it.
    def has_delete_permission(self, request, obj=None):
        return False

    def has_export_permission(self, request) -> bool:
        return request.user.has_perm("journeys.export_visitor")

    def has_erase_permission(self, request) -> bool:
        return request.user.has_perm("journeys.erase_visitor")

    @admin.action(description="Export everything held about the selected visitors (JSON)", permissions=["export"])
    def export_visitors(self, request, queryset):
        visitors = queryset.order_by("site_id", "visitor_id")
        exported = [data for visitor in visitors if (data := visitor_export(visitor=visitor)) is not None]
        response = JsonResponse(
            {"exported_at": timezone.now(), "visitors": exported},
            encoder=JSONEncoder,  # the API's: the file holds what GET /api/v1/visitors/{id} answers
            json_dumps_params={"indent": 2},
        )
        response["Content-Disposition"] = 'attachment; filename="visitors-export.json"'
        return response

    @admin.action(description="Erase everything held about the selected visitors", permissions=["erase"])
    def erase_visitors(self, request, queryset):
        visitors = list(queryset.select_related("site").order_by("site_id", "visitor_id"))
        if request.POST.get("confirmed") != "yes":
            return TemplateResponse(
                request,
                "admin/journeys/visitor/erase_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": self.model._meta,
                    "title": "Erase visitors",
                    "visitors": visitors,
                    "sessions": sum(visitor.session_count for visitor in visitors),
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                },
            )
        erased = sum(visitor_erase(visitor=visitor) for visitor in visitors)
        self.message_user(
            request,
            f"Erased {erased} visitor{'s' if erased != 1 else ''} and everything held about them.",
            messages.SUCCESS,
        )
        return None


@admin.register(JourneySession)
class JourneySessionAdmin(ReadOnlyAdmin):
    list_display = [
        "session_id",
        "site",
        "device_type",
        "source",
        "journey_path",
        "current_stage",
        "persona_type",
        "conversion_probability",
        "total_touchpoints",
        "automated",
        "started_at",
        "ended_at",
    ]
    list_filter = ["site", "device_type", "journey_path", "current_stage", "returning", "persona_type", "automated"]
    search_fields = ["session_id", "visitor__visitor_id"]
    date_hierarchy = "started_at"
    list_select_related = ["site"]
    exclude = ["device_fingerprint_hash", "request_hash", "client_hash"]
    readonly_fields = ["timeline"]

    @admin.display(description="Timeline")
    def timeline(self, obj):
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (item["at"].strftime("%Y-%m-%d %H:%M:%S"), item["kind"], item["what"], item["detail"])
                for item in session_timeline(obj)
            ),
        )
        return format_html(
            '<table class="timeline"><thead><tr><th>When</th><th>Kind</th><th>What</th><th>Detail</th></tr>'
            "</thead><tbody>{}</tbody></table>",
            rows,
        )


@admin.register(ConversionEvent)
class ConversionEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "session", "type", "value", "currency", "funnel_step", "converted_at"]
    list_filter = ["site", "type", "currency"]
    search_fields = ["event_id", "session__session_id"]
    date_hierarchy = "converted_at"
    list_select_related = ["session"]


@admin.register(QuarantinedEvent)
class QuarantinedEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "site", "endpoint", "batch_index", "event_id", "reason"]
    list_filter = ["site", "endpoint"]
    search_fields = ["event_id"]
    date_hierarchy = "received_at"


@admin.register(IdempotencyConflict)
class IdempotencyConflictAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "site", "kind", "client_id"]
    list_filter = ["site", "kind"]
    search_fields = ["client_id"]


@admin.register(CrossDeviceLink)
class CrossDeviceLinkAdmin(ReadOnlyAdmin):
    list_display = ["unified_journey_id", "site", "method", "device_sequence", "created_at"]
    list_filter = ["site", "method"]
    exclude = ["identifier_hash"]
