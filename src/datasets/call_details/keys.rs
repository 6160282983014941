//! The keys of each level of a Call Details record that the decoder (`wire`) reads, in any
//! casing: every other key of the level is an unmapped field, kept in its rows' `extra`
//! (see [`crate::sources::extra`]). A key added to a decoder's reads must be added here, or it
//! would be both a column and an `extra` field.

/// The keys of a session record the decoder reads (any casing); every other key is unmapped.
pub(super) const SESSION_KEYS: &[&str] = &[
    "sessionId",
    "conversationId",
    "channel",
    "botId",
    "userId",
    "channelSpecificUserId",
    "orgId",
    "sessionStartTime",
    "sessionEndTime",
    "finalStatus",
    "smartStatus",
    "reason",
    "disconnectingEvent",
    "errorDetails",
    "direction",
    "isVoicemail",
    "skills",
    "dispositions",
    "dispositionRemarks",
    "surveyType",
    "csatScore",
    "csatFeedback",
    "npsScore",
    "likeDislikeScore",
    "customerinfo",
    "userleveltags",
    "sessionleveltags",
    "campaigninfo",
    "automationBotIDs",
    "metaInfo",
    "destinations",
];
/// The keys of `customerinfo` the decoder reads (`Direction` is v1's).
pub(super) const CUSTOMER_KEYS: &[&str] = &[
    "CustomerPhone",
    "CenterPhone",
    "CustomerFirstName",
    "CustomerLastName",
    "CustomerEmail",
    "direction",
];
/// The keys of `campaigninfo` the decoder reads.
pub(super) const CAMPAIGN_KEYS: &[&str] = &[
    "campaignName",
    "campaignId",
    "campaignInstanceId",
    "campaignDialingListId",
    "attempt",
    "contactStatus",
    "campaignRunDate",
    "contactListName",
];
/// The keys of a `QueueEntry` destination the decoder reads.
pub(super) const QUEUE_KEYS: &[&str] = &[
    "destinationType",
    "queueId",
    "queueName",
    "EnterTime",
    "CallbackOpted",
    "CallbackOptedTime",
    "userCallbackAcceptTime",
    "respondingAgent",
    "nonRespondingAgents",
];
/// The keys of an agent leg (an `AgentSegment` destination, `respondingAgent` or a
/// `nonRespondingAgents[]` element) the decoder reads.
pub(super) const LEG_KEYS: &[&str] = &[
    "destinationType",
    "agentId",
    "email",
    "name",
    "status",
    "nonResponseEvent",
    "assignedAt",
    "acceptedTime",
    "firstResponseTime",
    "firstResponseDuration",
    "interactionEndTime",
    "interactionDuration",
    "afterCallWorkEndTime",
    "afterCallWorkDuration",
    "agentNotes",
    "ConsultingAgents",
];
