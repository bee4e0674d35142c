from django.conf import settings
from django.db import migrations, models

import geo.models

ROLES = ("bureau", "bank", "exchange", "auditor")


def create_role_groups(apps, schema_editor):
    group_model = apps.get_model("auth", "Group")
    for name in ROLES:
        group_model.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.CreateModel(
            name="CountyMembership",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("county_code", models.CharField(max_length=6, validators=[geo.models._county_code_validator])),
                ("user", models.OneToOneField(on_delete=models.deletion.CASCADE, related_name="county_membership",
                                              to=settings.AUTH_USER_MODEL)),
            ],
        ),
        migrations.RunPython(create_role_groups, migrations.RunPython.noop),
    ]
