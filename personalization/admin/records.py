"""What the decision engine recorded: read-only."""

from __future__ import annotations

from django.contrib import admin

from core.admin import ReadOnlyAdmin
from personalization.models import Assignment, Exposure, PersonalizationRecord


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ["assigned_at", "experiment", "visitor", "variant", "bucket"]
    list_filter = ["experiment"]
    search_fields = ["visitor__visitor_id"]
    list_select_related = ["experiment", "visitor", "variant"]


@admin.register(Exposure)
class ExposureAdmin(ReadOnlyAdmin):
    list_display = ["exposed_at", "session", "variant", "variant_version", "experiment"]
    list_filter = ["experiment", "variant"]
    search_fields = ["session__session_id"]
    list_select_related = ["session", "variant", "experiment"]
    date_hierarchy = "exposed_at"


@admin.register(PersonalizationRecord)
class PersonalizationRecordAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "session",
        "personalization_type",
        "strategy",
        "variant",
        "engagement_time",
        "conversion_attributed",
        "confidence",
    ]
    list_filter = ["personalization_type", "strategy", "conversion_attributed"]
    search_fields = ["session__session_id"]
    list_select_related = ["session", "variant"]
    date_hierarchy = "created_at"
