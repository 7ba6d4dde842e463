"""Serializer fields that accept only the JSON type the OpenAPI document promises.

DRF's own fields are forgiving: CharField turns 123 into "123", IntegerField takes "1999" and 1999.0,
BooleanField takes "yes", "on" and 1. My OpenAPI document says string, integer and boolean, and
Schemathesis flagged every one of those as "invalid data accepted", so these fields check the type
first and then let DRF do the rest.
"""

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data
