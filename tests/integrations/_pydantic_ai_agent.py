"""A pydantic-ai agent behind an agentlab entry point, importable so that a replay finds
its code (used by test_pydantic_ai)."""

from __future__ import annotations

from typing import Any

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

import agentlab as al
from agentlab.integrations.pydantic_ai import RecordedModel, defer_approval, governed_tools

asked: list[int] = []
"""The requests the model answered (by turn)."""
ran: list[str] = []
"""The accounts the tool looked up."""


def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    turn = sum(isinstance(m, ModelResponse) for m in messages)
    asked.append(turn)
    if turn == 0:
        return ModelResponse(parts=[ToolCallPart("lookup_account", {"account_id": "ACME-1"},
                                                 tool_call_id="call-1")],
                             usage=RequestUsage(input_tokens=5, output_tokens=2))
    return ModelResponse(parts=[TextPart("ACME-1 is on enterprise")],
                         usage=RequestUsage(input_tokens=9, output_tokens=4))


def lookup_account(account_id: str) -> dict[str, str]:
    """Look an account up in the CRM."""
    ran.append(account_id)
    return {"account_id": account_id, "plan": "enterprise"}


@al.agent("pydantic-triage", name="bot", version="1.0.0")
def triage(task_input: dict[str, Any]) -> str:
    agent = Agent(RecordedModel(FunctionModel(answer, model_name="scripted")),
                  toolsets=[governed_tools(lookup_account)])
    return agent.run_sync(task_input["question"]).output


# -- a help-desk agent whose runs pause for approval and resume in another process ----------

GRANT = "helpdesk-jira"
WORKFLOW = "pydantic-helpdesk"
AGENT = "helpdesk-bot"
QUESTION = "ACME-1042 was double charged: sort it out"


def helpdesk_answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """A scripted model: a lookup the tool rejects (a tool error), the lookup again, a
    deletion no grant covers (denied), an issue that needs approval, then the answer."""
    turn = sum(isinstance(m, ModelResponse) for m in messages)
    script: list[tuple[str, dict[str, Any]] | str] = [
        ("lookup_account", {"account_id": "1042"}),
        ("lookup_account", {"account_id": "ACME-1042"}),
        ("delete_account", {"account_id": "ACME-1042"}),
        ("create_issue", {"project": "SUP", "title": "Refund ACME-1042"}),
        "Opened an issue for the refund of ACME-1042",
    ]
    step = script[turn]
    if isinstance(step, str):
        return ModelResponse(parts=[TextPart(step)],
                             usage=RequestUsage(input_tokens=20, output_tokens=8))
    return ModelResponse(parts=[ToolCallPart(step[0], step[1], tool_call_id=f"call-{turn}")],
                         usage=RequestUsage(input_tokens=10 + turn, output_tokens=3))


def helpdesk_agent(side_log: str, *, native: bool) -> Any:
    """The agent; ``native``: create_issue is a pydantic-ai ``requires_approval`` tool
    (else an agentlab policy rule asks for the approval). Each execution of create_issue
    appends a line to ``side_log``, and a layer outside the governed toolset calls every
    tool twice (as a framework may on resume)."""
    from pydantic_ai import ModelRetry
    from pydantic_ai.tools import DeferredToolRequests
    from pydantic_ai.toolsets import FunctionToolset, WrapperToolset

    from agentlab.integrations.pydantic_ai import GovernedToolset, ToolRules

    def lookup_account(account_id: str) -> dict[str, str]:
        """Look an account up in the CRM."""
        if not account_id.startswith("ACME-"):
            raise ModelRetry("account ids look like ACME-<n>")
        return {"account_id": account_id, "plan": "enterprise"}

    def delete_account(account_id: str) -> str:
        """Delete an account."""
        raise AssertionError("a denied call must not run")

    def create_issue(project: str, title: str) -> dict[str, str]:
        """Open an issue in the tracker."""
        with open(side_log, "a", encoding="utf-8") as fh:
            fh.write(f"{project} {title}\n")
        return {"key": f"{project}-101", "title": title}

    tools = FunctionToolset([lookup_account, delete_account])
    tools.add_function(create_issue, requires_approval=native)

    class CalledTwice(WrapperToolset[Any]):
        async def call_tool(self, name: str, tool_args: dict[str, Any], ctx: Any,
                            tool: Any) -> Any:
            first = await self.wrapped.call_tool(name, tool_args, ctx, tool)
            assert await self.wrapped.call_tool(name, tool_args, ctx, tool) == first
            return first

    governed = GovernedToolset(tools, rules={
        "lookup_account": ToolRules(scope="crm:read"),
        "delete_account": ToolRules(side_effect=True, scope="crm:delete:{account_id}"),
        "create_issue": ToolRules(side_effect=True, scope="jira:write:{project}")})
    return Agent(RecordedModel(FunctionModel(helpdesk_answer, model_name="scripted")),
                 toolsets=[CalledTwice(governed)], output_type=[str, DeferredToolRequests])


@al.agent(WORKFLOW, name=AGENT, version="1.0.0", grants=[GRANT], approver=defer_approval,
          policy=al.Policy([al.Rule("issues-need-a-person", "approve", tool="create_issue")]))
def helpdesk(task_input: dict[str, Any]) -> str | None:
    """The help-desk agent behind an entry point, so ``agentlab resume`` finds its code: it
    pauses its run when a call waits for approval."""
    from pydantic_ai.tools import DeferredToolRequests

    result = helpdesk_agent(task_input["side_log"], native=False).run_sync(
        task_input["question"])
    if isinstance(result.output, DeferredToolRequests):
        run = al.current_run()
        assert run is not None
        run.pause("waiting for the issue's approval")
        return None
    return str(result.output)


def main(argv: list[str]) -> int:
    """``python _pydantic_ai_agent.py STORE RUN_ID SIDE_LOG policy|native``: record (or
    resume) run RUN_ID; print ``PAUSED <request id>`` and exit 3 when it waits for an
    approval, ``DONE <answer>`` and exit 0 when it ended."""
    from datetime import timedelta

    from pydantic_ai.tools import DeferredToolRequests

    from agentlab.integrations.pydantic_ai import defer_approval, deferred_results

    store_url, run_id, side_log, how = argv
    store = al.open_store(store_url)
    if store.grant(GRANT) is None:
        al.issue_grant(store, GRANT, principal=AGENT, owner="support", workflow=WORKFLOW,
                       scopes=["crm:read", "jira:write:SUP"], expires_in=timedelta(hours=1))
    native = how == "native"
    policy = al.Policy([] if native else [al.Rule("issues-need-a-person", "approve",
                                                  tool="create_issue")])
    agent = helpdesk_agent(side_log, native=native)
    try:
        with al.record_run(WORKFLOW, agent=AGENT, store=store, run_id=run_id, resume=True,
                           task_input={"question": QUESTION}, grants=[GRANT], policy=policy,
                           approver=defer_approval) as run:
            result = agent.run_sync(QUESTION)
            while isinstance(result.output, DeferredToolRequests):
                decided = deferred_results(result.output)
                if decided is None:
                    ids = [m["agentlab_approval"] for m in result.output.metadata.values()]
                    run.pause(f"waiting for approval {', '.join(ids)}")
                    print("PAUSED", *ids, flush=True)
                    return 3
                result = agent.run_sync(message_history=result.all_messages(),
                                        deferred_tool_results=decided)
            run.outcome(success=True)
    finally:
        store.close()
    print("DONE", result.output, flush=True)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
