"""A tree_size no database integer holds is a 400 naming it (issue 14), not an overflow in the query."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["bundle/", "certificate.pdf"])
@pytest.mark.parametrize("size", [2**63, 2**64, 10**30])
def test_a_tree_size_beyond_64_bits_is_400(scene, path, size):
    response = scene.roles.bank.get(f"/api/assets/{scene.asset.code}/{path}", {"tree_size": str(size)})
    assert response.status_code == 400, response.content[:300]
    assert [e["pointer"] for e in response.json()["errors"]] == ["#/tree_size"]


def test_the_largest_tree_size_is_a_404_when_no_checkpoint_has_it(scene):
    response = scene.roles.bank.get(f"/api/assets/{scene.asset.code}/bundle/", {"tree_size": str(2**63 - 1)})
    assert response.status_code == 404
