"""Pages show only the buttons the signed-in account may use."""

from __future__ import annotations

from tests.gateway.accounts import another_client, sign_in
from tests.gateway.test_access_matrix import alice_jobs

CHANGE = ('id="delete-button"', 'id="abort-form"', 'id="rename-button"', 'id="notes-edit"')
CREATE = ('href="/datasets/images/classification/new"', 'id="upload-pretrained"')


async def page(client, name: str, path: str) -> str:
    async with another_client(client) as c:
        await sign_in(c, name)
        r = await c.get(path, headers={"Accept": "text/html"})
        assert r.status_code == 200, r.text
        return r.text


async def test_change_buttons_only_for_the_owner_and_admins(client, backend) -> None:
    """alice and the admin see Delete/Abort/Rename/Notes and Make pretrained on alice's jobs;
    bob (another user) and vera (a viewer) see none of them."""
    jobs = await alice_jobs(client, backend)
    for path in (f"/datasets/{jobs['dataset']}", f"/models/{jobs['model']}"):
        for name, shown in (("alice", True), ("admin", True), ("bob", False), ("vera", False)):
            html = await page(client, name, path)
            for button in CHANGE:
                assert (button in html) is shown, (name, path, button)


async def test_create_buttons_only_for_users_and_admins(client, backend) -> None:
    """New dataset/model and Upload pretrained model are hidden from viewers."""
    for name, shown in (("alice", True), ("admin", True), ("vera", False)):
        html = await page(client, name, "/")
        for button in CREATE:
            assert (button in html) is shown, (name, button)


async def test_every_post_form_carries_the_csrf_token(client, backend) -> None:
    """Each POST form of the pages alice uses has the hidden `_csrf_token` field."""
    jobs = await alice_jobs(client, backend)
    for path in ("/", f"/models/{jobs['model']}", "/datasets/images/classification/new"):
        html = (await client.get(path, headers={"Accept": "text/html"})).text
        forms = html.count('method="post"')
        assert forms >= 1 and html.count('name="_csrf_token"') == forms, path
        assert f'value="{client.cookies["csrftoken"]}"' in html


async def test_viewers_see_no_classify_or_clone_buttons(client, backend) -> None:
    """Classifying and cloning create work: a viewer's model page has neither (the forms stay
    in the page, hidden, for the live script), a user's has both."""
    jobs = await alice_jobs(client, backend)
    path = f"/models/{jobs['model']}"
    html = await page(client, "vera", path)
    assert 'id="classify-form" hidden>' in html and 'id="clone-link"' not in html
    assert "may look but not classify" in html
    html = await page(client, "bob", path)
    assert 'id="classify-form">' in html and 'id="clone-link"' in html
    html = await page(client, "vera", f"/datasets/{jobs['dataset']}")
    assert 'id="clone-link"' not in html and 'id="new-model-link"' not in html
