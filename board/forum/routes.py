"""The public forum: index, categories, topics, replies, moderation and profiles."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from board import permissions
from board.errors import Invalid
from board.forum import queries, solutions
from board.i18n import gettext as _
from board.staff import notices
from board.web import (
    current_user,
    db,
    field,
    flood_message,
    page_count,
    page_number,
    path_for,
    read_form,
    redirect,
    render,
    require_user,
    settings_of,
)

TITLE_MAX = 200
BODY_MAX = 60_000


async def index(request: Request) -> Response:
    categories = await queries.category_index(db(request), current_user(request))
    banner = await notices.public_banner(db(request))
    return render(request, "forum/index.html", categories=categories, public_banner=banner)


async def category(request: Request) -> Response:
    return await _render_category(request)


async def _render_category(request: Request, status_code: int = 200, **form_state) -> Response:
    viewer = current_user(request)
    category = await queries.category_or_404(db(request), request.path_params["slug"], viewer)
    per_page = settings_of(request).topics_per_page
    total = await queries.count_topics(db(request), category, viewer)
    page = min(page_number(request), page_count(total, per_page))  # past the end: the last
    topics = await queries.topics_in_category(db(request), category.id, viewer, page, per_page)
    return render(
        request,
        "forum/category.html",
        status_code=status_code,
        category=category,
        topics=topics,
        page=page,
        pages=page_count(total, per_page),
        can_start_topic=permissions.can_start_topic(viewer, category),
        public_banner=await notices.public_banner(db(request)),
        **form_state,
    )


async def new_topic(request: Request) -> Response:
    viewer = current_user(request)
    category = await queries.category_or_404(db(request), request.path_params["slug"], viewer)
    if request.method == "GET":
        if viewer is None:
            return redirect(path_for(request, "login").include_query_params(next=request.url.path))
        return await _render_category(request)
    user = require_user(request)
    form = await read_form(request)
    title, body = field(form, "title", TITLE_MAX), field(form, "body", BODY_MAX)
    if not permissions.can_start_topic(user, category):
        raise HTTPException(403, _("Only staff may open topics in this category."))
    errors = {}
    if not title:
        errors["title"] = _("Please enter a title.")
    if not body:
        errors["body"] = _("Please write something.")
    if errors:
        return await _render_category(request, 400, errors=errors, title=title, body=body)
    try:
        topic_id = await queries.add_topic(
            db(request), category.id, user, title, body, settings_of(request).flood_seconds
        )
    except queries.FloodWait as wait:
        return await _render_category(
            request, 429, errors={"form": flood_message(wait.seconds)}, title=title, body=body
        )
    return redirect(path_for(request, "topic", topic_id=topic_id))


async def topic(request: Request) -> Response:
    return await _render_topic(request)


async def _render_topic(
    request: Request, status_code: int = 200, topic_id: int | None = None, **form_state
) -> Response:
    viewer = current_user(request)
    topic_id = topic_id or request.path_params["topic_id"]
    topic = await queries.topic_or_404(db(request), topic_id, viewer)
    per_page = settings_of(request).posts_per_page
    total = await queries.count_posts(db(request), topic, viewer)
    pages = page_count(total, per_page)
    page = min(page_number(request), pages)
    posts = await queries.posts_of_topic(db(request), topic.id, viewer, page, per_page)
    moderation_targets = (
        await queries.categories_for_move(db(request)) if permissions.can_moderate(viewer) else []
    )
    solution = await solutions.solution_of(db(request), topic)
    votes = (
        await solutions.votes_on(db(request), solution.id, viewer)
        if solution is not None and viewer is not None
        else None
    )
    return render(
        request,
        "forum/topic.html",
        status_code=status_code,
        topic=topic,
        posts=posts,
        page=page,
        pages=pages,
        can_reply=permissions.can_reply(viewer, topic),
        can_moderate=permissions.can_moderate(viewer),
        editable={post.id for post in posts if permissions.can_edit_post(viewer, post, topic)},
        move_targets=moderation_targets,
        public_banner=await notices.public_banner(db(request)),
        solution=solution,
        votes=votes,
        can_mark_solution=permissions.can_mark_solution(viewer, topic),
        can_vote=solution is not None and permissions.can_vote_on_solution(viewer, solution),
        can_see_votes=permissions.can_see_solution_votes(viewer),
        **form_state,
    )


async def reply(request: Request) -> Response:
    user = require_user(request)
    topic = await queries.topic_or_404(db(request), request.path_params["topic_id"], user)
    form = await read_form(request)
    body = field(form, "body", BODY_MAX)
    if not permissions.can_reply(user, topic):
        return await _render_topic(
            request, 403, errors={"form": _("This topic is locked. Replies are closed.")}, body=body
        )
    if not body:
        return await _render_topic(request, 400, errors={"body": _("Please write something.")})
    try:
        post_id = await queries.add_reply(
            db(request), topic, user, body, settings_of(request).flood_seconds
        )
    except queries.FloodWait as wait:
        return await _render_topic(
            request, 429, errors={"form": flood_message(wait.seconds)}, body=body
        )
    return redirect(path_for(request, "post", post_id=post_id))


async def post(request: Request) -> Response:
    """A permanent link to one post: redirects to the page of its topic that shows it."""
    viewer = current_user(request)
    post = await queries.post_or_404(db(request), request.path_params["post_id"], viewer)
    topic = await queries.topic_or_404(db(request), post.topic_id, viewer)
    position = await queries.post_position(db(request), post, viewer)
    page = page_count(position, settings_of(request).posts_per_page)
    url = path_for(request, "topic", topic_id=topic.id)
    if page > 1:
        url = url.include_query_params(page=page)
    return redirect(url, anchor=f"p{post.id}")


async def moderate(request: Request) -> Response:
    user = require_user(request)
    permissions.ensure_can_moderate(user)
    topic = await queries.topic_or_404(db(request), request.path_params["topic_id"], user)
    form = await read_form(request)
    action = field(form, "action", 20)
    flags = {
        "lock": {"locked": True},
        "unlock": {"locked": False},
        "pin": {"pinned": True},
        "unpin": {"pinned": False},
    }
    if action in flags:
        await queries.set_topic_flags(db(request), topic.id, **flags[action])
    elif action == "move":
        try:
            target = await queries.category_by_id(db(request), int(field(form, "category", 12)))
        except ValueError:
            target = None
        if target is None:
            return await _render_topic(
                request, 400, errors={"moderate": _("Please choose a category.")}
            )
        await queries.move_topic(db(request), topic, target.id)
    else:
        return await _render_topic(request, 400, errors={"moderate": _("Unknown action.")})
    return redirect(path_for(request, "topic", topic_id=topic.id))


async def edit_post(request: Request) -> Response:
    user = require_user(request)
    post = await queries.post_or_404(db(request), request.path_params["post_id"], user)
    topic = await queries.topic_or_404(db(request), post.topic_id, user)
    if not permissions.can_edit_post(user, post, topic):
        raise HTTPException(403, _("You may only edit your own posts in open topics."))
    is_first_post = post.id == topic.first_post_id
    if request.method == "GET":
        return render(
            request,
            "forum/edit_post.html",
            post=post,
            topic=topic,
            body=post.body,
            title=topic.title,
            is_first_post=is_first_post,
        )
    form = await read_form(request)
    body = field(form, "body", BODY_MAX)
    title = field(form, "title", TITLE_MAX) if is_first_post else None
    if not body or (is_first_post and not title):
        errors = {"body": _("Please write something.")} if not body else {}
        if is_first_post and not title:
            errors["title"] = _("Please enter a title.")
        return render(
            request,
            "forum/edit_post.html",
            status_code=400,
            post=post,
            topic=topic,
            body=body,
            title=title,
            is_first_post=is_first_post,
            errors=errors,
        )
    await queries.edit_post(db(request), post.id, user.id, body, title)
    return redirect(path_for(request, "post", post_id=post.id))


async def delete_post(request: Request) -> Response:
    user = require_user(request)
    if not permissions.can_delete_post(user):
        raise HTTPException(403)
    post = await queries.post_or_404(db(request), request.path_params["post_id"], user)
    topic = await queries.topic_or_404(db(request), post.topic_id, user)
    await read_form(request)
    await queries.soft_delete_post(db(request), post, topic, user.id)
    if post.id == topic.first_post_id:
        return redirect(path_for(request, "category", slug=topic.category_slug))
    return redirect(path_for(request, "topic", topic_id=topic.id))


async def mark_solution(request: Request) -> Response:
    """`solved` = 1 marks the post as its topic's solution, 0 takes the mark away."""
    user = require_user(request)
    post = await queries.post_or_404(db(request), request.path_params["post_id"], user)
    form = await read_form(request)
    solved = field(form, "solved", 1)
    if solved not in ("0", "1"):
        return await _render_topic(
            request, 400, topic_id=post.topic_id, errors={"solution": _("Unknown action.")}
        )
    try:
        topic_id = await solutions.set_solution(db(request), post.id, user, solved == "1")
    except Invalid as invalid:
        return await _render_topic(request, 400, topic_id=post.topic_id, errors=invalid.errors)
    if solved == "1":
        return redirect(path_for(request, "topic", topic_id=topic_id), anchor="solution")
    return redirect(path_for(request, "post", post_id=post.id))


async def rate_solution(request: Request) -> Response:
    """ "Was this helpful?": `helpful` = yes or no, one vote per person, changeable."""
    user = require_user(request)
    post = await queries.post_or_404(db(request), request.path_params["post_id"], user)
    form = await read_form(request)
    helpful = field(form, "helpful", 3)
    if helpful not in ("yes", "no"):
        return await _render_topic(
            request, 400, topic_id=post.topic_id, errors={"vote": _("Please choose yes or no.")}
        )
    try:
        topic_id = await solutions.vote(db(request), post.id, user, helpful == "yes")
    except Invalid as invalid:
        return await _render_topic(request, 400, topic_id=post.topic_id, errors=invalid.errors)
    return redirect(path_for(request, "topic", topic_id=topic_id), anchor="solution")


async def profile(request: Request) -> Response:
    viewer = current_user(request)
    person = await queries.user_or_404(db(request), request.path_params["user_id"])
    if not await queries.has_posted_publicly(db(request), person.id):
        raise HTTPException(404)
    recent = await queries.recent_posts_by(db(request), person.id, viewer)
    return render(request, "forum/profile.html", person=person, recent_posts=recent)


routes = [
    Route("/", index, name="index"),
    Route("/c/{slug}", category, name="category"),
    Route("/c/{slug}/new", new_topic, methods=["GET", "POST"], name="new_topic"),
    Route("/t/{topic_id:int}", topic, name="topic"),
    Route("/t/{topic_id:int}/reply", reply, methods=["POST"], name="reply"),
    Route("/t/{topic_id:int}/moderate", moderate, methods=["POST"], name="moderate"),
    Route("/p/{post_id:int}", post, name="post"),
    Route("/p/{post_id:int}/edit", edit_post, methods=["GET", "POST"], name="edit_post"),
    Route("/p/{post_id:int}/delete", delete_post, methods=["POST"], name="delete_post"),
    Route("/p/{post_id:int}/solution", mark_solution, methods=["POST"], name="mark_solution"),
    Route("/p/{post_id:int}/helpful", rate_solution, methods=["POST"], name="rate_solution"),
    Route("/u/{user_id:int}", profile, name="profile"),
]
