"""Names of domain actions that several parts of Kefu refer to. Imports nothing, so a
channel or an action can learn a name without loading a model's libraries."""

# The generative policy's reply: the policy predicts it, the web chat page puts 👍/👎 under
# it, and the feedback actions find the reply being rated by it.
GENERATED_REPLY_ACTION = "utter_generated_reply"
